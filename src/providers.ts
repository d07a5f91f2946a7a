// The onnxruntime execution providers the bot knows, and the groups its settings and its model
// loader treat alike: one list, so that the two never disagree about a provider.

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'tensorrt', 'dml', 'coreml', 'webgpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/** Providers that run on a numbered device (onnxruntime's `deviceId`). */
export const DEVICE_PROVIDERS: readonly ExecutionProvider[] = ['cuda', 'tensorrt', 'dml'];

/** Providers whose float16 kernels are fast and exact enough to import checkpoints in half precision. */
export const HALF_PRECISION_PROVIDERS: readonly ExecutionProvider[] = ['cuda', 'tensorrt', 'dml'];

/** Providers that run on a GPU, whose first runs at a shape are slow (kernel search, shader builds). */
export const GPU_PROVIDERS: readonly ExecutionProvider[] = [...DEVICE_PROVIDERS, 'webgpu'];

/** Whether `name` (any string: a loader takes provider names as given) is in `group`. */
export const inGroup = (group: readonly ExecutionProvider[], name: string): boolean =>
  (group as readonly string[]).includes(name);
