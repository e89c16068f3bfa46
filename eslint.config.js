import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The rooms of services/, bottom to top: domain ← adapters ← config ← pipeline ← ops. A room may
// import the rooms below it, never one above. The local stack (services/stack) stands beside the
// adapters: it uses domain and the Kafka adapter's probe, and config and ops may use it; the
// pipeline never does. Only the Kafka adapter imports the Kafka client.
const FORBIDDEN = {
  domain: ['adapters', 'stack', 'config', 'pipeline', 'ops'],
  adapters: ['stack', 'config', 'pipeline', 'ops'],
  stack: ['config', 'pipeline', 'ops'],
  config: ['pipeline', 'ops'],
  pipeline: ['stack', 'ops'],
  ops: [],
};
const upward = (names) =>
  names.map((name) => ({
    group: [`**/${name}/**`, `../${name}/**`, `../../${name}/**`, `../../../${name}/**`],
    message: `imports point one way (domain ← adapters ← config ← pipeline ← ops): this room may not import ${name}/`,
  }));
const kafkaClient = {
  group: ['kafkajs', '@kafkajs/*'],
  message: 'only services/adapters/kafka imports the Kafka client; use its exports',
};
const layerRules = (files, forbidden, allowKafka = false) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', { patterns: [...upward(forbidden), ...(allowKafka ? [] : [kafkaClient])] }],
  },
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'bench/results/**', 'dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Process-level globals are fine in a Node project.
      'no-undef': 'off',
    },
  },
  ...Object.entries(FORBIDDEN).map(([room, forbidden]) => layerRules([`services/${room}/**`], forbidden)),
  layerRules(['services/adapters/kafka/**'], FORBIDDEN.adapters, true),
  layerRules(['test/**', 'bench/**'], [], true),
);
