// Worker entry: plain JS that Node loads by itself, which then loads the TypeScript host through
// tsx (a worker does not inherit the main thread's loader hooks).
import { tsImport } from 'tsx/esm/api';

await tsImport('./host.ts', import.meta.url);
