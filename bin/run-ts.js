#!/usr/bin/env node
// Runs a TypeScript entry point (bench, demo helpers) with the same loader as the CLI.
import { register } from 'tsx/esm/api';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
register();
const entry = process.argv[2];
process.argv.splice(2, 1);
await import(pathToFileURL(path.resolve(entry)).href);
