// Preloaded (`node --import`) by the edge-runtime test: denies the Node built-ins an edge runtime
// lacks, and removes the one synchronous way to reach them.
import { register } from 'node:module';

register('./edge-hooks.mjs', import.meta.url);
delete process.getBuiltinModule;
