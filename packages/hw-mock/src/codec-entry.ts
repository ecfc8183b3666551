/**
 * @packageDocumentation
 * `@iommulab/hw-mock/codec`: the mock's architectural layouts for drivers and tests that program
 * it by hand: register offsets and fields, and encoders / decoders of every in-memory structure
 * (device-table and PASID entries, PTEs, commands, fault records).
 */
export * from './regs.js';
export * from './codec.js';
