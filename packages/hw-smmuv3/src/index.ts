/**
 * @packageDocumentation
 * `@iommulab/hw-smmuv3`: an Arm SMMUv3 for iommulab. The default export is the backend plugin;
 * named exports give the hardware model, the host driver, the LPAE table library and the codec
 * (`@iommulab/hw-smmuv3/codec`).
 */
export * from './codec/index.js';
