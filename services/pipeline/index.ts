/** Runnable services: `vecsync run <name>`; `all` runs them in one process, priority lane first. */
import { createEmbedderService } from './embedder/index.ts';
import { createPropagatorService } from './propagator/index.ts';
import { createWriterService } from './writer/index.ts';
import type { ServiceFactory } from './runtime/service.ts';

export const SERVICE_FACTORIES = {
  propagator: (rt) => createPropagatorService(rt),
  embedder: (rt) => createEmbedderService(rt),
  writer: (rt) => createWriterService(rt),
  reconciler: async (rt) => (await import('./reconciler/index.ts')).createReconcilerService(rt),
} as const satisfies Record<string, ServiceFactory>;

export type RunnableService = keyof typeof SERVICE_FACTORIES;
export const SERVICE_NAMES = Object.keys(SERVICE_FACTORIES) as RunnableService[];
