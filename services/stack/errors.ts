/**
 * Errors of the local stack. Bad input (a taken port, a missing tool, not root) is a
 * `ConfigError`, so the CLI prints it as one line; a component that does not come up is a
 * `StackError`, which names the component and points at its log file.
 */
import { ConfigError, RetriableError, VecsyncError } from '../domain/errors.ts';

/** A port the stack needs is held by a process the stack did not start. */
export class PortInUseError extends ConfigError {
  constructor(
    readonly port: number,
    readonly component: string,
    holder?: string,
  ) {
    super(`port ${port} (${component}) is already in use by another process${holder ? ` (${holder})` : ''}`);
  }
}

/** A tool the stack needs (java, mvn, apt-get, ...) is missing, or root rights are. */
export class MissingPrerequisiteError extends ConfigError {}

/** Maven Central or the Debian archive cannot be reached during a first download. */
export class DownloadSourceUnreachableError extends RetriableError {}

/** A component failed to install, start, become healthy or stop. */
export class StackError extends VecsyncError {
  readonly retriable = false;
}
