#!/usr/bin/env node
// Stand-in for the commands a VM's reset runs (systemctl stop, pkill) in local mode and tests:
// appends its arguments to the record file named first, as one JSON line, and succeeds.
import { appendFileSync } from 'node:fs';

const [recordFile, ...argv] = process.argv.slice(2);
appendFileSync(recordFile, `${JSON.stringify({ argv })}\n`);
