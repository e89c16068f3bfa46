/**
 * The component registry, in start order: PostgreSQL first (the registry stores its schemas
 * there), then Kafka, the schema registry, and Connect. `down` walks it backwards.
 * Adding a component is one module implementing StackComponent and one line here.
 */
import type { StackComponent } from '../types.ts';
import { connect } from './connect.ts';
import { kafka } from './kafka.ts';
import { postgres } from './postgres.ts';
import { registry } from './registry.ts';

export const COMPONENTS: readonly StackComponent[] = [postgres, kafka, registry, connect];
