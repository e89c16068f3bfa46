import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  configDifferences,
  connectorName,
  connectorParams,
  loadConnectorTemplate,
  renderConnector,
  slotName,
} from './render.ts';

const params = connectorParams({
  sourceUrl: 'postgres://app:s%40cret@db.example:6543/source_db',
  topicPrefix: 'acme.prod',
});

test('connector params come from the source URL and the topic prefix', () => {
  assert.equal(params.DB_HOST, 'db.example');
  assert.equal(params.DB_PORT, '6543');
  assert.equal(params.DB_NAME, 'source_db');
  assert.equal(params.DB_USER, 'app');
  assert.equal(params.DB_PASSWORD, 's@cret');
  assert.equal(params.CONNECTOR_NAME, 'acme.prod-outbox');
  assert.equal(params.SLOT_NAME, 'acme_prod_outbox');
  assert.equal(params.TOPIC_PREFIX_REGEX, 'acme\\.prod');
  assert.equal(connectorName('vecsync'), 'vecsync-outbox');
  assert.equal(slotName('vecsync'), 'vecsync_outbox');
});

test('the template renders without leftover placeholders and keeps the router variable', async () => {
  const rendered = renderConnector(await loadConnectorTemplate(), params);
  assert.equal(rendered.name, 'acme.prod-outbox');
  for (const [key, value] of Object.entries(rendered.config)) {
    assert.equal(typeof value, 'string', key);
    assert.doesNotMatch(value, /\{\{/, key);
  }
  assert.equal(rendered.config['transforms.outbox.route.topic.replacement'], 'acme.prod.outbox.${routedByValue}');
  assert.equal(rendered.config['transforms.state.route.topic.replacement'], 'acme.prod.state.documents');
  assert.equal(rendered.config['predicates.isOutboxTable.pattern'], 'acme\\.prod\\.vecsync\\.vector_sync_outbox');
  assert.equal(rendered.config['skipped.operations'], 'u,d,t');
  assert.equal(rendered.config['slot.name'], 'acme_prod_outbox');
});

test('an unknown placeholder is an error, not a literal sent to Connect', () => {
  assert.throws(
    () => renderConnector({ name: 'x', config: { a: '{{NOPE}}' } }, params),
    /unknown placeholder \{\{NOPE\}\}/,
  );
});

test('config differences ignore the name Connect adds and catch changed, added and removed keys', () => {
  const desired = { a: '1', b: '2' };
  assert.deepEqual(configDifferences({ name: 'c', a: '1', b: '2' }, desired), []);
  assert.deepEqual(configDifferences({ name: 'c', a: '1', b: '3' }, desired), ['b']);
  assert.deepEqual(configDifferences({ name: 'c', a: '1' }, desired), ['b']);
  assert.deepEqual(configDifferences({ name: 'c', a: '1', b: '2', z: '0' }, desired), ['z']);
});
