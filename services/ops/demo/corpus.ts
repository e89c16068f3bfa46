/**
 * A deterministic demo corpus: documents about a handful of topics, spread over tenants, each
 * readable by the groups that own its topic. Searches over it have an obvious right answer.
 */

export interface DemoDocument {
  tenant_id: string;
  document_id: string;
  title: string;
  body: string;
  metadata: Record<string, unknown>;
  restricted: Record<string, unknown>;
  acl: string[];
}

export const DEMO_TENANTS = ['demo-acme', 'demo-globex', 'demo-initech', 'demo-umbrella'] as const;

export const TOPICS = {
  databases: {
    group: 'group:engineering',
    words: [
      'postgres',
      'replication',
      'failover',
      'replica',
      'wal',
      'vacuum',
      'index',
      'query',
      'latency',
      'standby',
      'backup',
      'restore',
    ],
  },
  kubernetes: {
    group: 'group:engineering',
    words: [
      'kubernetes',
      'cluster',
      'autoscaling',
      'pod',
      'node',
      'deployment',
      'helm',
      'ingress',
      'container',
      'scheduler',
      'namespace',
      'rollout',
    ],
  },
  finance: {
    group: 'group:finance',
    words: [
      'revenue',
      'forecast',
      'quarterly',
      'budget',
      'invoice',
      'margin',
      'expenses',
      'audit',
      'cashflow',
      'ledger',
      'tax',
      'payroll',
    ],
  },
  people: {
    group: 'group:hr',
    words: [
      'onboarding',
      'benefits',
      'vacation',
      'hiring',
      'interview',
      'salary',
      'review',
      'training',
      'policy',
      'leave',
      'mentor',
      'handbook',
    ],
  },
  security: {
    group: 'group:security',
    words: [
      'incident',
      'phishing',
      'vulnerability',
      'patch',
      'firewall',
      'breach',
      'credential',
      'rotation',
      'audit',
      'encryption',
      'alert',
      'forensics',
    ],
  },
  sales: {
    group: 'group:sales',
    words: [
      'pipeline',
      'prospect',
      'deal',
      'quota',
      'renewal',
      'discount',
      'contract',
      'churn',
      'customer',
      'pricing',
      'territory',
      'demo',
    ],
  },
} as const;

export type TopicName = keyof typeof TOPICS;
const TOPIC_NAMES = Object.keys(TOPICS) as TopicName[];
const FILLER = [
  'the',
  'team',
  'notes',
  'about',
  'this',
  'week',
  'we',
  'agreed',
  'to',
  'review',
  'next',
  'steps',
  'and',
  'owners',
  'for',
];

/** A small seeded PRNG (mulberry32): the same seed gives the same corpus on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function sentence(rand: () => number, words: readonly string[]): string {
  const n = 8 + Math.floor(rand() * 8);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rand() < 0.55 ? pick(rand, words) : pick(rand, FILLER));
  const s = out.join(' ');
  return s.charAt(0).toUpperCase() + s.slice(1) + '.';
}

/** Tenants take documents round-robin, topics rotate per round, so every tenant has every topic. */
export function topicOf(index: number): TopicName {
  return TOPIC_NAMES[Math.floor(index / DEMO_TENANTS.length) % TOPIC_NAMES.length]!;
}

/** `count` documents, round-robin over tenants and topics. */
export function generateCorpus(count: number, seed = 42): DemoDocument[] {
  const rand = prng(seed);
  const docs: DemoDocument[] = [];
  for (let i = 0; i < count; i++) {
    const topic = topicOf(i);
    const { group, words } = TOPICS[topic];
    const paragraphs = 1 + Math.floor(rand() * 4);
    const body = Array.from({ length: paragraphs }, () =>
      Array.from({ length: 3 + Math.floor(rand() * 4) }, () => sentence(rand, words)).join(' '),
    ).join('\n\n');
    const acl = [group, ...(rand() < 0.3 ? ['user:alice'] : []), ...(rand() < 0.1 ? ['group:everyone'] : [])];
    docs.push({
      tenant_id: DEMO_TENANTS[i % DEMO_TENANTS.length]!,
      document_id: `doc-${String(i).padStart(5, '0')}`,
      title: `${topic} note ${i}: ${pick(rand, words)} ${pick(rand, words)}`,
      body,
      metadata: { category: topic, source: 'demo', internal_cost_center: `cc-${i % 17}` },
      restricted: { owner_ssn: `000-00-${String(i).padStart(4, '0')}` },
      acl,
    });
  }
  return docs;
}

/** A document written as prose, with a paraphrase query whose right answer it is. */
export interface DemoArticle extends DemoDocument {
  /** A question that shares few words with the article; the article is its right answer. */
  paraphrase: string;
  /** A principal that may read the article. */
  reader: string;
}

function article(
  tenant: (typeof DEMO_TENANTS)[number],
  id: string,
  topic: TopicName,
  title: string,
  body: string,
  paraphrase: string,
): DemoArticle {
  const { group } = TOPICS[topic];
  return {
    tenant_id: tenant,
    document_id: id,
    title,
    body,
    metadata: { category: topic, source: 'demo-article' },
    restricted: {},
    acl: [group],
    paraphrase,
    reader: group,
  };
}

/**
 * Hand-written articles mixed into the generated corpus. The generated notes repeat topic words;
 * these say something, so a search by meaning has one right answer among many notes on the topic.
 */
export const DEMO_ARTICLES: DemoArticle[] = [
  article(
    'demo-acme',
    'article-db-failover',
    'databases',
    'Runbook: the primary database is down',
    'When the primary PostgreSQL server stops responding, promote the hot standby to primary, point the connection pooler at it, and rebuild the old primary as a new replica once it is back.',
    'what do we do when the main database server goes down',
  ),
  article(
    'demo-globex',
    'article-expenses',
    'finance',
    'Expense reports',
    'Submit receipts for travel and meals within thirty days; your manager approves the report, and the amount is paid back with the next monthly salary.',
    'how do I get my money back for a business dinner',
  ),
  article(
    'demo-initech',
    'article-lost-laptop',
    'security',
    'Lost or stolen laptop',
    'Report a lost or stolen laptop to the service desk at once, so the device can be locked and wiped remotely and its certificates revoked.',
    'someone took my work computer on the train',
  ),
  article(
    'demo-umbrella',
    'article-parental-leave',
    'people',
    'Parental leave',
    'New parents may take up to sixteen weeks of paid leave during the first year after a birth or adoption, in one block or in several parts.',
    'time off after having a baby',
  ),
];
