/**
 * @packageDocumentation
 * The conformance suite for iommulab backends. Register it with your runner through
 * {@link runConformance}, or run single {@link conformanceCases} with {@link runConformanceCase}.
 */
export { runConformance, runConformanceCase, type ConformanceRunner, type ConformanceOptions } from './run.js';
export { conformanceCases, type ConformanceCase } from './cases.js';
export { caseContext, type CaseContext } from './context.js';
export { ConformanceFailure, check, checkEqual, checkErrno } from './check.js';
