/**
 * Registers + queues part of the SMMUv3 model (features, ID registers, register-side behaviour,
 * GERROR, interrupts, command / event / PRI queues), for the pipeline and tests to import from one
 * place.
 */
export * from './features.js';
export * from './idr.js';
export * from './gerror.js';
export * from './irq.js';
export * from './cmdq-entry.js';
export * from './command-queue.js';
export * from './output-queue.js';
export * from './event-queue.js';
export * from './pri-queue.js';
export * from './registers.js';
export * from './control.js';
