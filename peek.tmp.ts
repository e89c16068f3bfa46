import { Kafka, logLevel } from 'kafkajs';
const [topic, partition, offset] = process.argv.slice(2);
const kafka = new Kafka({ brokers: ['127.0.0.1:19092'], logLevel: logLevel.NOTHING });
const c = kafka.consumer({ groupId: 'peek-' + Date.now() });
await c.connect();
await c.subscribe({ topic: topic!, fromBeginning: true });
let n = 0;
await c.run({
  eachMessage: async ({ partition: p, message }) => {
    if (partition && String(p) !== partition) return;
    if (offset && message.offset !== offset) return;
    console.log(
      p,
      message.offset,
      message.key?.toString(),
      JSON.stringify(Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]))),
      message.value?.toString().slice(0, 600),
    );
    n++;
  },
});
await new Promise((r) => setTimeout(r, 4000));
await c.disconnect();
console.log('count', n);
