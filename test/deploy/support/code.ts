/**
 * The one place where the deploy tests import vecsync's own modules: the names, defaults and
 * versions the manifests, the Dockerfile and docker-compose.yml must agree with. When services/
 * moves, only these import paths change.
 */
export { CONFIG_VARIABLES, SECRET_VARIABLES, modelKey } from '../../../services/config/index.ts';
export { LANES, SERVICES, topicsFor } from '../../../services/kafka/topics.ts';
export { DEFAULT_PARTITIONS } from '../../../services/connectors/topics.ts';
export { VERSIONS } from '../../../services/stack/versions.ts';
export {
  connectWorkerProperties,
  kafkaServerProperties,
  postgresSettings,
  registryManagementPort,
  registrySystemProperties,
} from '../../../services/stack/render.ts';
export { stackDatabases } from '../../../services/stack/components/postgres.ts';
