/**
 * Dead-letter producer. A dead letter is the original message, byte for byte, plus headers that
 * say why, where it came from, and how often it failed, so `vecsync dlq replay` can put it back.
 */
import { describeError, reasonOf } from '../../domain/errors.ts';
import type { InMessage } from './message.ts';
import type { Producer } from './producer.ts';

export const DLQ_HEADER = {
  reason: 'vecsync.dlq.reason',
  error: 'vecsync.dlq.error',
  service: 'vecsync.dlq.service',
  /** The consumer group that gave up: with several sinks, it says which pipeline failed. */
  group: 'vecsync.dlq.group',
  topic: 'vecsync.dlq.original_topic',
  partition: 'vecsync.dlq.original_partition',
  offset: 'vecsync.dlq.original_offset',
  attempts: 'vecsync.dlq.attempts',
  firstFailure: 'vecsync.dlq.first_failure',
  lastFailure: 'vecsync.dlq.last_failure',
  /** Set when the original value was too large for the DLQ topic: its size in bytes. */
  valueOmitted: 'vecsync.dlq.value_omitted_bytes',
} as const;

/**
 * The DLQ topics' `max.message.bytes` (set by the topic provisioner). A dead letter whose original
 * value would not fit (with its headers) is stored as a reference instead: the headers name the
 * original topic, partition and offset, and `value_omitted_bytes` says how large it was, so a dead
 * letter can never fail to be produced and wedge its partition.
 */
export const DLQ_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Room left for the key, headers and record overhead. */
const DLQ_VALUE_BUDGET = DLQ_MAX_MESSAGE_BYTES - 256 * 1024;

export interface DeadLetter {
  message: InMessage;
  error: unknown;
  attempts: number;
  firstFailure: Date;
  lastFailure: Date;
}

export { reasonOf };

export function deadLetterHeaders(service: string, group: string, letter: DeadLetter): Record<string, string> {
  // Error text may quote input; cap it so a hostile value cannot bloat the DLQ headers.
  const error = describeError(letter.error).slice(0, 500);
  return {
    ...letter.message.headers,
    [DLQ_HEADER.reason]: reasonOf(letter.error),
    [DLQ_HEADER.error]: error,
    [DLQ_HEADER.service]: service,
    [DLQ_HEADER.group]: group,
    [DLQ_HEADER.topic]: letter.message.topic,
    [DLQ_HEADER.partition]: String(letter.message.partition),
    [DLQ_HEADER.offset]: letter.message.offset,
    [DLQ_HEADER.attempts]: String(letter.attempts),
    [DLQ_HEADER.firstFailure]: letter.firstFailure.toISOString(),
    [DLQ_HEADER.lastFailure]: letter.lastFailure.toISOString(),
  };
}

export async function sendDeadLetters(
  producer: Producer,
  topic: string,
  service: string,
  group: string,
  letters: DeadLetter[],
): Promise<void> {
  await producer.send(
    topic,
    letters.map((letter) => {
      const headers = deadLetterHeaders(service, group, letter);
      const size = letter.message.value?.length ?? 0;
      if (size <= DLQ_VALUE_BUDGET) return { key: letter.message.key, value: letter.message.value, headers };
      return { key: letter.message.key, value: null, headers: { ...headers, [DLQ_HEADER.valueOmitted]: String(size) } };
    }),
  );
}
