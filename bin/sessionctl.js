#!/usr/bin/env node
// The compiled CLI; `npm ci` builds dist/ through the prepare script.
require('../dist/src/cli/main.js').run();
