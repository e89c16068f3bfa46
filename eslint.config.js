import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The rooms of services/, bottom to top: domain ← stack ← adapters ← config ← pipeline ← ops. A
// room may import the rooms below it, never one above. The local stack (services/stack) fetches
// from Maven Central and runs processes; the adapters use its fetcher for model files. Only the
// Kafka adapter imports the Kafka client (the stack's broker probe is handed to it).
const FORBIDDEN = {
  domain: ['stack', 'adapters', 'config', 'pipeline', 'ops'],
  stack: ['adapters', 'config', 'pipeline', 'ops'],
  adapters: ['config', 'pipeline', 'ops'],
  config: ['pipeline', 'ops'],
  pipeline: ['ops'],
  ops: [],
};
const upward = (names) =>
  names.map((name) => ({
    group: [`**/${name}/**`, `../${name}/**`, `../../${name}/**`, `../../../${name}/**`],
    message: `imports point one way (domain ← stack ← adapters ← config ← pipeline ← ops): this room may not import ${name}/`,
  }));
const kafkaClient = {
  group: ['kafkajs', '@kafkajs/*', '@platformatic/kafka'],
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
  // A unit test follows its room's rule, except that it may build a configuration with loadConfig.
  ...Object.entries(FORBIDDEN).map(([room, forbidden]) =>
    layerRules(
      [`services/${room}/**/*.test.ts`],
      forbidden.filter((name) => name !== 'config'),
      room === 'adapters',
    ),
  ),
  layerRules(['test/**', 'bench/**'], [], true),
);
