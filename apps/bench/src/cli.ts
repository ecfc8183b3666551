#!/usr/bin/env node
/**
 * The `iommulab-bench` bin. Everything happens in {@link main}; this only sets the exit code.
 */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
