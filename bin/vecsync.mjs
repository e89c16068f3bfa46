#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx, so there is no build step between
// `npm ci` and a working `vecsync` command.
import { register } from 'tsx/esm/api';

register();
await import('../services/ops/cli/main.ts');
