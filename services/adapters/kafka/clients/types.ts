/**
 * A client-neutral view of a Kafka client: the part of it vecsync's producer and runner rely on,
 * and what the client benchmark measures. Two implementations sit beside it (`kafkajs.ts`,
 * `platformatic.ts`), registered by name in `index.ts`.
 */
import type { Logger } from '../../telemetry/log.ts';
import type { InMessage, OutMessage } from '../message.ts';

export interface ClientSettings {
  /** Bootstrap brokers (host:port), as `loadConfig().kafkaBrokers`. */
  brokers: string[];
  clientId: string;
  log: Logger;
}

export interface ClientProducer {
  /**
   * Sends one batch with acks=all and resolves once every in-sync replica has it. Keys go to
   * partitions by the Java client's murmur2, as Debezium partitions, so one key lands on the same
   * partition whichever client wrote it.
   */
  send(topic: string, messages: OutMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** Messages of one partition in offset order; never empty. */
export interface MemberBatch {
  topic: string;
  partition: number;
  messages: InMessage[];
}

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export interface CommitReport {
  topic: string;
  partition: number;
  /** The committed offset: the one after the batch's last message. */
  offset: string;
  /** How long the commit call took. */
  ms: number;
}

export interface MemberOptions {
  groupId: string;
  topics: string[];
  /**
   * Handles one batch. The member commits the offset after the batch's last message once this
   * resolves, and only then hands it the next batch. Throwing stops the member: the batch stays
   * uncommitted and `stopped` rejects with the error (retry policy belongs to the caller).
   */
  handler: (batch: MemberBatch) => Promise<void>;
  /** Largest batch handed to the handler at once. */
  maxBatch: number;
  /** Where a group with no committed offset starts: the beginning (true) or the end of each partition. */
  fromBeginning: boolean;
  /** Default CONSUMER_SETTINGS.sessionTimeout (client.ts). */
  sessionTimeout?: number;
  /** Default CONSUMER_SETTINGS.heartbeatInterval (client.ts). */
  heartbeatInterval?: number;
  /** Called with this member's whole assignment every time the group (re)assigns it. */
  onAssignment?: (assignment: TopicPartitions[]) => void;
  /** Called after every successful commit. */
  onCommit?: (commit: CommitReport) => void;
}

export interface GroupMember {
  /** Connects, joins the group and starts fetching; resolves once subscribed (partitions may follow). */
  start(): Promise<void>;
  /**
   * Finishes the batch in flight, commits it, and leaves the group, so its partitions move at once
   * instead of after the session timeout.
   */
  leave(): Promise<void>;
  /** Resolves after `leave()`; rejects with the error that stopped the member otherwise. */
  readonly stopped: Promise<void>;
}

export interface KafkaClient {
  readonly name: string;
  /** The client library's version, for benchmark conditions. */
  readonly version: string;
  createProducer(): Promise<ClientProducer>;
  createMember(options: MemberOptions): GroupMember;
  /** Creates a topic with the broker's default replication factor and waits until it has leaders. */
  createTopic(topic: string, partitions: number): Promise<void>;
  deleteTopics(topics: string[]): Promise<void>;
  /** The group's committed offset per partition of `topic`; partitions without a commit are absent. */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, string>>;
  /** Closes the admin connection the topic and offset calls opened. */
  close(): Promise<void>;
}
