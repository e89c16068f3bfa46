import type { Runtime } from './index.ts';

/** A long-running consumer (embedder, writer, propagator, reconciler). */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  /** Finishes the batch in flight, commits offsets, releases resources. */
  stop(): Promise<void>;
}

export type ServiceFactory = (rt: Runtime) => Promise<Service>;
