/**
 * The one place where the deploy tests import vecsync's own modules: the names, defaults and
 * versions the manifests, the Dockerfile and docker-compose.yml must agree with. When services/
 * moves, only these import paths change.
 */
import { configVariables } from '../../../services/config/index.ts';
export { modelKey } from '../../../services/domain/types.ts';

/** Every variable vecsync reads, by name, with its default (`derived` when it follows the ports). */
export const CONFIG_VARIABLES: Readonly<Record<string, { default: string; doc: string; secret: boolean }>> =
  Object.fromEntries(configVariables().map((v) => [v.env, v]));
export const SECRET_VARIABLES: readonly string[] = configVariables()
  .filter((v) => v.secret)
  .map((v) => v.env);
export { LANES, SERVICES, topicsFor } from '../../../services/adapters/kafka/topics.ts';
export { DEFAULT_PARTITIONS } from '../../../services/adapters/kafka/admin.ts';
export { VERSIONS } from '../../../services/stack/versions.ts';
export {
  connectWorkerProperties,
  kafkaServerProperties,
  postgresSettings,
  registryManagementPort,
  registrySystemProperties,
} from '../../../services/stack/render.ts';
export { stackDatabases } from '../../../services/stack/components/postgres.ts';
