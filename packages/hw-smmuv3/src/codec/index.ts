/**
 * @packageDocumentation
 * `@iommulab/hw-smmuv3/codec`: the SMMUv3 architectural layouts, bit-exact from the specification
 * (register map, STE, CD, L1 descriptors, commands, event and PRI records, VMSAv8-64
 * descriptors), with field readers and writers over `Uint32Array` words.
 */
export * from './field.js';
export * from './regs.js';
export * from './ste.js';
export * from './cd.js';
export * from './cmd.js';
export * from './event.js';
export * from './priq.js';
export * from './pte.js';
