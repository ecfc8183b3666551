/**
 * The version of the backend contract this package describes. A backend declares the version it
 * was written against in `BackendPlugin.apiVersion`; hosts accept {@link SUPPORTED_API_VERSIONS}.
 *
 * Additive changes (new optional methods) keep the version; a new required method or a changed
 * meaning bumps it, together with the major version of `@iommulab/driver-api`.
 */
export const API_VERSION = 1 as const;

/**
 * Contract versions a host accepts: the current one and the one before it. Version 1 is the
 * first, so there is no earlier version to adapt yet.
 */
export const SUPPORTED_API_VERSIONS: readonly number[] = [API_VERSION];
