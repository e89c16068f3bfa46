/**
 * Records a credentials pause in vecsync.service_pauses (migration 0008), so `vecsync status` run
 * anywhere shows which service of which sink is paused and why. Best effort: the pause itself is
 * the consumer retrying with backoff, the row only reports it.
 */
import type pg from 'pg';

export interface PauseChange {
  paused: boolean;
  dependency: string;
  reason: string;
  detail: string;
}

/**
 * The runner's `onPauseChange` for `service` of `sinkName`. Changes are written one after the
 * other, in order: a pause and the resume right after it go out on different pooled connections,
 * and a resume overtaken by its pause would leave the row behind.
 */
export function pauseRecorder(pool: pg.Pool, sinkName: string, service: string) {
  let previous: Promise<void> = Promise.resolve();
  const write = async (pause: PauseChange): Promise<void> => {
    if (pause.paused) {
      await pool.query(
        `INSERT INTO vecsync.service_pauses (sink_name, service, dependency, reason, detail)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (sink_name, service, dependency)
         DO UPDATE SET reason = EXCLUDED.reason, detail = EXCLUDED.detail, updated_at = now()`,
        [sinkName, service, pause.dependency, pause.reason, pause.detail.slice(0, 500)],
      );
    } else {
      await pool.query(`DELETE FROM vecsync.service_pauses WHERE sink_name = $1 AND service = $2 AND dependency = $3`, [
        sinkName,
        service,
        pause.dependency,
      ]);
    }
  };
  return (pause: PauseChange): Promise<void> => {
    const next = previous.then(
      () => write(pause),
      () => write(pause),
    );
    previous = next;
    return next;
  };
}
