/**
 * Every version the local stack runs, in one place. docker-compose.yml pins the same versions
 * as images; `stack/maven/*.pom.xml` receive them as `-D` properties.
 */
export const VERSIONS = {
  postgres: '15',
  pgvector: '0.8.0',
  kafka: '4.1.1',
  debezium: '3.4.3.Final',
  apicurio: '3.3.3',
  /** The maven-dependency-plugin used for build-classpath and unpack (Maven 3.8's default is 2.8). */
  mavenDependencyPlugin: '3.8.1',
} as const;

export const ARTIFACTS = {
  debeziumPostgresPlugin: `io.debezium:debezium-connector-postgres:${VERSIONS.debezium}:tar.gz:plugin`,
  apicurioApp: `io.apicurio:apicurio-registry-app:${VERSIONS.apicurio}:tar.gz:all`,
} as const;
