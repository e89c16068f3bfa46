/**
 * A small labelled retrieval set written for the minilm tests: 27 short documents over nine
 * topics (three per topic, so a query must find the right one among its neighbours), and 15
 * queries that paraphrase one document each while sharing few of its words.
 */

export interface LabelledDocument {
  id: string;
  title: string;
  body: string;
}

export interface LabelledQuery {
  text: string;
  /** The document a reader would pick for this query. */
  expected: string;
}

export const RETRIEVAL_DOCUMENTS: LabelledDocument[] = [
  {
    id: 'db-failover',
    title: 'Database failover runbook',
    body: 'When the primary PostgreSQL server stops responding, promote the hot standby to primary, point the connection pooler at it, and rebuild the old primary as a new replica once it is back.',
  },
  {
    id: 'db-backup',
    title: 'Nightly backups',
    body: 'Base backups are taken every night with pg_basebackup and WAL files are archived to object storage, so any point in time of the last fourteen days can be restored.',
  },
  {
    id: 'db-slow-queries',
    title: 'Finding slow queries',
    body: 'Enable pg_stat_statements, sort by total execution time, and look at the plans of the worst statements with EXPLAIN ANALYZE; a missing index is the most common cause.',
  },
  {
    id: 'k8s-autoscaling',
    title: 'Horizontal pod autoscaling',
    body: 'The horizontal pod autoscaler adds replicas of a deployment when average CPU use stays above the target, and removes them again after load has been low for five minutes.',
  },
  {
    id: 'k8s-rollout',
    title: 'Rolling deployments',
    body: 'A rolling update replaces pods a few at a time and waits for each new pod to pass its readiness probe; if the new version keeps failing, roll back to the previous revision.',
  },
  {
    id: 'k8s-secrets',
    title: 'Secrets in the cluster',
    body: 'Credentials are stored as Kubernetes secrets, mounted into containers as files rather than environment variables, and encrypted at rest in etcd.',
  },
  {
    id: 'fin-expenses',
    title: 'Expense reports',
    body: 'Submit receipts for travel and meals within thirty days; your manager approves the report, and the amount is paid back with the next monthly salary.',
  },
  {
    id: 'fin-invoices',
    title: 'Paying supplier invoices',
    body: 'Supplier invoices are checked against the purchase order and the delivery note, then paid on the net-30 schedule by bank transfer.',
  },
  {
    id: 'fin-forecast',
    title: 'Quarterly forecast',
    body: 'Each quarter the finance team projects revenue and costs for the next twelve months from the sales pipeline and last year’s seasonality.',
  },
  {
    id: 'hr-parental-leave',
    title: 'Parental leave',
    body: 'New parents may take up to sixteen weeks of paid leave during the first year after a birth or adoption, in one block or in several parts.',
  },
  {
    id: 'hr-onboarding',
    title: 'Onboarding checklist',
    body: 'On the first day a new employee receives a laptop, meets a buddy from the team, and completes the security training before getting access to production systems.',
  },
  {
    id: 'hr-remote',
    title: 'Working from home',
    body: 'Staff may work remotely up to three days a week; the company pays for a desk chair and a monitor for the home office.',
  },
  {
    id: 'sec-phishing',
    title: 'Reporting phishing',
    body: 'If an email asks for your password or urges you to open an unexpected attachment, do not click anything; forward it to the security team with the report button.',
  },
  {
    id: 'sec-mfa',
    title: 'Two-factor authentication',
    body: 'Every account must use a second factor: a hardware key or an authenticator app; text messages are not accepted as a second factor.',
  },
  {
    id: 'sec-laptop-lost',
    title: 'Lost or stolen laptop',
    body: 'Report a lost or stolen laptop to the service desk at once, so the device can be locked and wiped remotely and its certificates revoked.',
  },
  {
    id: 'cook-bread',
    title: 'Sourdough bread',
    body: 'Mix flour, water, salt and an active starter, let the dough rise overnight in the fridge, then bake it in a hot covered pot until the crust is dark brown.',
  },
  {
    id: 'cook-risotto',
    title: 'Mushroom risotto',
    body: 'Toast arborio rice in butter, add hot stock one ladle at a time while stirring, and finish with fried mushrooms and grated parmesan.',
  },
  {
    id: 'cook-knives',
    title: 'Caring for kitchen knives',
    body: 'Wash knives by hand, dry them immediately, hone the edge before each use and have them sharpened on a whetstone twice a year.',
  },
  {
    id: 'travel-visa',
    title: 'Visas for business trips',
    body: 'Check whether the destination country requires a visa for business visitors at least six weeks before departure; the travel office can send an invitation letter.',
  },
  {
    id: 'travel-booking',
    title: 'Booking flights and hotels',
    body: 'Book flights and hotels through the travel portal; economy class is the default, and flights longer than eight hours may be booked in premium economy.',
  },
  {
    id: 'travel-jetlag',
    title: 'Coping with jet lag',
    body: 'Shift your sleep by an hour a day before a long trip, get daylight in the morning after arrival, and avoid caffeine in the afternoon.',
  },
  {
    id: 'garden-tomatoes',
    title: 'Growing tomatoes',
    body: 'Sow tomato seeds indoors in early spring, plant the seedlings out after the last frost in a sunny spot, and water the roots rather than the leaves.',
  },
  {
    id: 'garden-compost',
    title: 'Making compost',
    body: 'Layer kitchen scraps and green garden waste with dry leaves or cardboard, keep the heap moist, and turn it every few weeks until it becomes dark crumbly soil.',
  },
  {
    id: 'garden-pruning',
    title: 'Pruning fruit trees',
    body: 'Prune apple and pear trees in late winter while they are dormant: remove dead and crossing branches and open the centre to let light in.',
  },
  {
    id: 'space-eclipse',
    title: 'Solar eclipses',
    body: 'A solar eclipse happens when the Moon passes between the Earth and the Sun and casts its shadow on part of the Earth; never look at it without proper filters.',
  },
  {
    id: 'space-mars',
    title: 'Missions to Mars',
    body: 'Rovers on Mars study rocks and soil for signs that the planet once had liquid water and perhaps microbial life.',
  },
  {
    id: 'space-telescope',
    title: 'Choosing a telescope',
    body: 'For a first telescope, a small reflector on a stable mount shows the craters of the Moon, the rings of Saturn and the moons of Jupiter.',
  },
];

export const RETRIEVAL_QUERIES: LabelledQuery[] = [
  { text: 'what do we do when the main database server goes down', expected: 'db-failover' },
  { text: 'how can I recover the data as it was last Tuesday', expected: 'db-backup' },
  { text: 'my SQL statements take forever, how do I find out why', expected: 'db-slow-queries' },
  { text: 'automatically add more instances when traffic grows', expected: 'k8s-autoscaling' },
  { text: 'ship a new version of the app without downtime', expected: 'k8s-rollout' },
  { text: 'how do I get reimbursed for a business dinner', expected: 'fin-expenses' },
  { text: 'time off after having a baby', expected: 'hr-parental-leave' },
  { text: 'what happens during a new hire’s first day', expected: 'hr-onboarding' },
  { text: 'I got a suspicious message asking for my login details', expected: 'sec-phishing' },
  { text: 'someone took my work computer on the train', expected: 'sec-laptop-lost' },
  { text: 'recipe for a loaf with a crunchy crust', expected: 'cook-bread' },
  { text: 'do I need an entry permit to visit a client abroad', expected: 'travel-visa' },
  { text: 'feeling tired after flying across time zones', expected: 'travel-jetlag' },
  { text: 'turn food waste into fertiliser', expected: 'garden-compost' },
  { text: 'when the moon blocks the sun', expected: 'space-eclipse' },
];
