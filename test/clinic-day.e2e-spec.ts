import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import type { AppConfig } from '@kc/config';
import type {
  Appointment,
  Bundle,
  CarePlan,
  Communication,
  CommunicationRequest,
  Condition,
  DetectedIssue,
  MedicationAdministration,
  MedicationRequest,
  Patient,
  Procedure,
  Provenance,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { getQueueToken } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import { FhirClient, updateEntry } from '@kc/fhir';
import { startFhirSandbox, type FhirSandbox } from '@kc/fhir-sandbox';
import { DeadLetters, infusionJobId, JOBS, QUEUES } from '@kc/queue';
import {
  carePlanHoldsCare,
  carePlanHoldsTask,
  protocolPlanOf,
  takesChecksOnly,
  dueAfterPlanEnd,
  hasReminders,
  isCompletedAtItsEnd,
  planEndsAt,
  isReminderAbout,
  performedOf,
  plannedReminders,
  reminderRulesForTask,
  standingNoticeRates,
  infusionDefinitionFor,
  sameInfusion,
  windowsOverlap,
} from '@kc/followups';
import { PlanDefinitions } from '@kc/nest-core';
import {
  CAREPLAN_KEY_SYSTEM,
  CLINIC_ALERT_KEY_SYSTEM,
  clinicAlertKey,
  infusionInErrorOf,
  isInfusionInError,
  isInfusionNotLinked,
  infusionNotLinkedOf,
  needsClinicAlert,
  protocolWindowOf,
  rateNoticeAlertKey,
  TASK_KEY_SYSTEM,
} from '@kc/protocols';
import {
  approvedOutside,
  hasEnded,
  isApproved,
  isClosedByStatus,
  isOpen,
  OPEN_STATUSES,
  ORDER_KEY_SYSTEM,
  ordersApprovedOn,
  stateOf,
  TO_BE_DONE_SEARCH,
  windowMovedOutside,
} from '@kc/task-states';
import { ToDoIndex, WorklistIndex, type WorklistEntry } from '@kc/worklist-index';
import { administrationOf, ehrOrderLike, ehrReplacementOf, ucum } from './fixtures/orders';
import { EHR_PATHWAY_PROTOCOL, ehrCarePlan } from './fixtures/plans';
import { activeCondition, PREGNANCY } from './fixtures/patient-data';
import { actionOf, applyPlan, completeInfusion, enrolPatient, everyWorkerConnected, waitFor } from './support/clinic';
import { expectEverythingValid } from './support/fhir-validation';
import { MaintenanceProcessor } from '../apps/worker/src/maintenance/maintenance.processor';
import { FailingWorkAlerts } from '../apps/worker/src/alerts/failing-work-alerts';
import { FAILING_WORK } from '../apps/worker/src/alerts/failing-work-kinds';
import { notLinkedKey } from '../apps/worker/src/followups/unlinked-infusions';
import { checkAnswers } from './support/checks';
import { isUnresolved } from '../apps/api/src/review/contraindication-guard';
import { startTestService, TEST_WEBHOOK_SECRET, type TestService } from './support/test-service';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy';
import { startPrivateRedis, type PrivateRedis } from './support/private-redis';
import { subscribeToEmbeddedStore } from '../apps/api/src/events/embedded-store-subscriptions';
import { WEBHOOK_PATH } from '../apps/api/src/events/fhir-webhook.controller';

/**
 * Deterministic pseudo-random numbers. The actors share them, so a seed fixes the day's mix of actions, not their
 * interleaving: run a failing seed (CLINIC_DAY_SEED) a few times, and larger days with CLINIC_DAY_PATIENTS and
 * CLINIC_DAY_STEPS.
 */
function prng(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

const PROTOCOLS = ['ketamine-low-dose-series', 'ketamine-monthly-maintenance', 'ketamine-high-dose-as-needed'];
const HOUR_MS = 3_600_000;
/** The EHR inbox the clinic's alerts go to. */
const ON_CALL = 'PractitionerRole/on-call';
const DAY_MS = 24 * HOUR_MS;
/** Answers a clinician may get when someone else got there first, or the patient cannot have it: never 4xx else, never 5xx. */
const EXPECTED_REFUSALS = [404, 409, 412, 422];

interface Enrolled {
  patient: string;
  carePlanId: string;
  infusions: string[];
  contraindicated: boolean;
}

interface Decision {
  taskId: string;
  /** The Task's version the clinician decided on. */
  seenVersion: string;
  decision: string;
}

/**
 * A clinic's day at once, as the quick start runs it (the embedded store notifying the service). Straight to the store,
 * an EHR gives approved sessions at the pump (under the order a nurse finds: the EHR's replacement when the dose was
 * changed there) and records infusions (some also told through the event API, some naming no plan), orders sessions
 * awaiting approval itself, records pregnancies and infusions in error, cancels and deletes orders, pauses, resumes and
 * stops plans, deletes Tasks and contraindications, closes Tasks by their status; a scheduling system books, cancels
 * and deletes appointments; two clinicians approve (one at a time and in bulk), reject, reschedule, record checks,
 * override contraindications and activate plans from their worklists and to-do lists, on the versions the lists showed;
 * the sweeps and the lists' reconciliation run beside them. Once everything has settled, what a clinic and an EHR rely
 * on holds whatever the interleaving: no answer outside what a caller may get (never a 5xx); a plan with an open issue,
 * paused or ended has no order to give and nothing a clinician could approve; a clear plan holds nothing; every
 * pregnancy is found; every decision has its Provenance; each infusion is followed up once per action; an order the
 * pump gave is never left closed by the service (a closing that crossed the pump's record is undone); every order to
 * give answers an approved Task, never two for one Task, and every approved session has its one order; the lists show
 * exactly what the store holds; the clinic is told (its EHR inbox) once of each alert, and of every held order,
 * reported effect and approved order at odds with a pump record the eMAR documented late (session 40: a third of the
 * pump's records come later, lowered); everything written is valid R4. Found, when written (session 36): a
 * $bulk-approve failed whole by a Task deleted meanwhile, an order left active by its deleted Task beyond any hold, a
 * sweep failed whole by one deletion, an $activate that read the issues twice, a held session rescheduled into a second
 * order, a session the pump gave superseded as moot; with the pump on (session 37): closings that crossed the pump, a
 * given session planned by an infusion since in error left open, an order given under a deleted Task left active, a
 * session whose order was deleted in a restart left approved; with dose changes (sessions 37-38): the EHR's replacement
 * left active after its session was given or rejected, or left open beside the order it replaced under a paused plan,
 * and a session the pump gave during an infusion taken back before its follow-up; with the EHR's own orders (session
 * 42): the order a session was approved on left active after the session was given, and one order approved on by two
 * sessions, which failed the hold; with the EHR closing Tasks by their status and charting infusions naming no plan
 * (session 43): the EHR's replacement of a session's order left active under the Task the EHR cancelled (seed 2303).
 * The restart variant stops the service mid-day with its work in flight and checks the same once the polls and the
 * sweep have run.
 */
describe.each([
  ['in one run', 'one run'],
  ['with a restart at midday (durable store, polls every 2 s)', 'restart'],
  ['with the FHIR server down for a while after midday (polls every 2 s)', 'outage'],
  ['with Redis killed after midday and started again on its AOF (polls every 2 s)', 'redis crash'],
] as const)('a clinic day, everything at once, %s', (_, variant) => {
  const restart = variant === 'restart';
  /**
   * The outage variant (session 55): the FHIR server, behind a proxy, answers the service 503 for a while (three
   * seconds at least, past every job's retries), while the EHR, the scheduling system and the clinicians carry on:
   * the EHR's writes land and are notified, the clinicians' decisions are refused (503), the jobs heard fail for good.
   * The worker tries them again by itself (DEAD_LETTER_REVIVAL_MS, 1 s here) and the rest of the day must end as any
   * day ends.
   */
  const outage = variant === 'outage';
  /**
   * The Redis crash variant (session 55): the service's own Redis (AOF, fsync always, as an operator runs it) is
   * SIGKILLed after midday and started again on its data three seconds later, while the EHR, the scheduling
   * system and the clinicians carry on: notifications and events are refused (503, the store sends its notifications
   * again), decisions are written to the FHIR server and their list updates replayed, jobs in flight taken over.
   */
  const redisCrash = variant === 'redis crash';
  const SEED = Number(process.env.CLINIC_DAY_SEED ?? 20261204);
  const PATIENTS = Number(process.env.CLINIC_DAY_PATIENTS ?? 16);
  const EHR_STEPS = Number(process.env.CLINIC_DAY_STEPS ?? 80);
  const CLINICIAN_STEPS = Math.round(EHR_STEPS * 1.1);
  /**
   * Approved sessions given at the pump before their infusions are recorded (since session 37 by default: session 36
   * found a fault in about one such day in twelve). CLINIC_DAY_PUMP=0 leaves the pump out.
   */
  const PUMP = process.env.CLINIC_DAY_PUMP !== '0';
  /**
   * Doses changed (session 37): the EHR replaces orders (priorPrescription) and the clinicians use `$change-dose`. On by
   * default since session 38 (it found three faults, fixed in trust.e2e-spec, then ran green for about 200 days);
   * CLINIC_DAY_DOSE_CHANGES=0 leaves them out.
   */
  const DOSE_CHANGES = process.env.CLINIC_DAY_DOSE_CHANGES !== '0';
  /**
   * Sessions ordered in the EHR directly (session 42): a prescriber there orders a session awaiting approval, for its
   * time, and the clinician whose approval is refused as a duplicate approves it on that order (`onOrder`), as the
   * page's dialog offers. CLINIC_DAY_EHR_ORDERS=0 leaves them out.
   */
  const EHR_ORDERS = process.env.CLINIC_DAY_EHR_ORDERS !== '0';
  /**
   * Tasks closed in the EHR by their status alone (session 43): an EHR marks an approved session completed or
   * cancelled, or a proposal cancelled, writing nothing else; the reconciliation closes their orders as that status
   * says. CLINIC_DAY_EHR_TASK_CLOSINGS=0 leaves them out.
   */
  const EHR_TASK_CLOSINGS = process.env.CLINIC_DAY_EHR_TASK_CLOSINGS !== '0';
  /**
   * Infusions charted naming no plan (session 43): a quarter of those the pump gave a session during are recorded
   * without `basedOn`, as an EHR that does not link its charting; the service links them by the pump's record.
   * CLINIC_DAY_UNLINKED=0 leaves them out.
   */
  const UNLINKED = process.env.CLINIC_DAY_UNLINKED !== '0';
  /**
   * The EHR's own care plans (session 47): each patient has a care episode there, and the EHR names it in a third of
   * the infusions it charts, first (before the service's plan), and in half of those it charts naming none of the
   * service's. Half the episodes are care pathways the EHR applied from a PlanDefinition of its own on the same server
   * (session 48: found, and following up no infusion). CLINIC_DAY_EHR_EPISODES=0 leaves them out.
   */
  const EHR_EPISODES = process.env.CLINIC_DAY_EHR_EPISODES !== '0';
  /**
   * Windows moved and Tasks reassigned in the EHR (session 44): a scheduler there edits an open Task's due window, a day
   * or days earlier or later, now and then beyond its protocol window (the service times the session's reminders from
   * it), or gives the Task to someone else (Task.owner; the lists show whose it is). CLINIC_DAY_EHR_WINDOW_MOVES=0 leaves
   * them out.
   */
  const EHR_WINDOW_MOVES = process.env.CLINIC_DAY_EHR_WINDOW_MOVES !== '0';
  /**
   * Deaths recorded in the EHR (session 44): now and then a patient's record says deceased; their plans end, with
   * everything they hold. Some are taken back (recorded in error, session 46): their plans stay ended, and the sweep
   * notes on each that the death was taken back. CLINIC_DAY_DECEASED=0 leaves them out.
   */
  const DECEASED = process.env.CLINIC_DAY_DECEASED !== '0';
  /**
   * Infusions re-timed in the EHR (session 45): a nurse puts a charted infusion's time right after its follow-ups were
   * written: it ran longer, or began earlier, or (linked ones) was charted on the wrong day. Its follow-ups are counted
   * again from the time it says. CLINIC_DAY_EHR_RETIMES=0 leaves them out.
   */
  const EHR_RETIMES = process.env.CLINIC_DAY_EHR_RETIMES !== '0';
  /**
   * Infusions charted twice (session 47): the EHR's interface sends a charted infusion again as a new Procedure, for
   * the same time and plan. Followed up once. CLINIC_DAY_EHR_TWICE=0 leaves them out.
   */
  const EHR_TWICE = process.env.CLINIC_DAY_EHR_TWICE !== '0';
  /**
   * Patient records merged (session 48): now and then the EHR merges a patient's record into a new one (FHIR's
   * Patient/$merge: `replaced-by` on the old, `replaces` on the new), leaving the plan under the old; from then on it
   * records pregnancies and deaths under the new one. CLINIC_DAY_EHR_MERGES=0 leaves them out.
   */
  const EHR_MERGES = process.env.CLINIC_DAY_EHR_MERGES !== '0';
  /**
   * Plans given an end in the EHR (session 49): now and then the clinic decides a patient's course ends on a date
   * (`CarePlan.period.end`, a date or a dateTime, in the weeks the day's sessions fall in), and now and then extends it
   * again (the end removed). No session is then left open, or an order to give, for a window beginning after it.
   * Since session 50 a third of the ends are two days ago (the course ends early, on the server's clock): the service
   * completes such a plan once nothing is open under it, and makes it active again when the end is removed.
   * CLINIC_DAY_EHR_PLAN_ENDS=0 leaves them out.
   */
  const EHR_PLAN_ENDS = process.env.CLINIC_DAY_EHR_PLAN_ENDS !== '0';
  let planEndsSet = 0;
  let planEndsPassed = 0;
  let wrappedUp = 0;
  /** Each copy charted, with the infusion it copies. */
  const chartedCopies = new Map<string, string>();
  /**
   * Patients on two plans at once (session 45): one patient in six is also enrolled on another protocol from the same
   * day (maintenance begun before the series ended), so their sessions share days; a clinician approves the second
   * beside the first now and then. CLINIC_DAY_TWO_PLANS=0 leaves them out (on by default since session 46, after 30 more
   * runs, all green but for a re-timing fault of another kind, fixed).
   */
  const TWO_PLANS = process.env.CLINIC_DAY_TWO_PLANS !== '0';
  /**
   * Sessions begun in the EHR (session 46): a nurse starting an approved session sets its Task in progress first, as
   * R4's Task workflow has it, now and then; its infusion must answer it all the same. CLINIC_DAY_EHR_BEGINS=0 leaves
   * them out.
   */
  const EHR_BEGINS = process.env.CLINIC_DAY_EHR_BEGINS !== '0';
  let service: TestService;
  const random = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const enrolled: Enrolled[] = [];
  const decisions: Decision[] = [];
  /** DetectedIssues a clinician was told were overridden. */
  const overrides: string[] = [];
  /** Sessions approved on an order the EHR wrote for them (`onOrder`). */
  let approvedOnEhrOrders = 0;
  /** Sessions the pump gave under an order the EHR wrote (one approved on, or a replacement). */
  let ehrOrdersGiven = 0;
  /** Tasks awaiting approval the EHR set to be done itself; approved sessions it set in progress before the pump. */
  let setToBeDone = 0;
  let begunInEhr = 0;
  /** Infusions charted naming no plan, each with the pump's record of the session it gave (charted first, or late). */
  const unlinkedCharted = new Map<string, MedicationAdministration>();
  /** Of those, the ones whose session the EHR closed naming them (Task.output). */
  const completedNaming = new Set<string>();
  /** The plan each infusion charted naming none was a session of: what a clinician links it to. */
  const unlinkedPlanOf = new Map<string, string>();
  /** Infusions a clinician linked to their plan ($link-infusion). */
  let linkedByClinician = 0;
  /**
   * The pump's records charted so far: at once, or documented late and charted since. (Not one flag of "the last
   * session given": the day's two EHR loops give sessions at once, and one loop's late record read the other's flag.)
   */
  const chartedRecords = new WeakSet<MedicationAdministration>();
  /** Tasks whose window the EHR moved; Tasks it gave someone else. */
  let windowsMoved = 0;
  let reassigned = 0;
  /** Patients the EHR records as deceased; those whose death it took back (recorded in error). */
  const deceased = new Set<string>();
  const deathsTakenBack = new Set<string>();
  /** Tasks the EHR deleted (as read before): an infusion whose check it deleted had one. */
  const deletedTasks: Task[] = [];
  /** The record each merged patient's was merged into; the record each death was recorded on. */
  const keptRecordOf = new Map<string, string>();
  /** The patients whose record kept was merged again into a newer one. */
  const mergedTwice = new Set<string>();
  const deathRecordOf = new Map<string, string>();
  /** Where the EHR records what it learns of a patient now: the record kept, once merged. */
  const recordOf = (patient: string) => keptRecordOf.get(patient) ?? patient;
  /** Infusions the EHR re-timed; Tasks approved outside their protocol window, with a reason. */
  const retimed = new Set<string>();
  let approvedOutsideWindow = 0;
  /** Approvals refused for another plan's session on the same days; of those, approved beside it after all. */
  let refusedForOtherPlan = 0;
  let approvedBesideOtherPlan = 0;
  /** Tasks the EHR closed by their status alone, with that status. */
  const closedByEhr = new Map<string, Task['status']>();
  /** Infusions in error planned again without them ($replan): their issues. */
  const replanned: string[] = [];
  const appointments: Appointment[] = [];
  /** Orders the EHR cancelled or deleted itself; orders the pump gave, with when it recorded them. */
  const ehrClosed = new Set<string>();
  /** The EHR's replacements written beside the order they replace, left open (its cancel never went). */
  const leftOpen = new Set<string>();
  /** The orders written here that the EHR deleted, with their key (the session's Task): their replacements are its. */
  const deletedOrderKeys = new Map<string, string>();
  const given: { order: string; recorded: string }[] = [];
  /**
   * Pump records the eMAR documents late (session 40), at a rate lowered at the pump: written by a later EHR step,
   * after the infusion was recorded and followed up (its next session proposed, or approved already).
   */
  const documentedLate: MedicationAdministration[] = [];
  /** Answers outside what a clinician or an EHR may get: a 5xx, a 400 on a well-formed call. */
  const unexpected: string[] = [];
  /** The service's requests the FHIR server refused while down (the outage variant). */
  let outageRefused = 0;

  let dataDir: string | undefined;
  /** The outage variant's FHIR server, and the proxy the service reaches it through. */
  let store: FhirSandbox | undefined;
  let proxy: FlakyProxy | undefined;
  /** The Redis crash variant's own Redis. */
  let redis: PrivateRedis | undefined;
  /** While the FHIR server or Redis is down for the service: its 503s are what a caller may get. */
  let faultOn = false;
  /**
   * The quick start's service. No grace for an EHR's replacement order: a cancelled order is judged at once (a clinic
   * waits 60 s). With a restart: a data directory, and the polls that find what a notification lost in the stop.
   */
  const config = (): Partial<AppConfig> => ({
    fhirSandboxSubscriptions: true,
    orderChangeGraceMs: 0,
    // The clinic is told in the EHR's inbox (session 40): what it is told, and how often, is checked at the end.
    clinicAlertRecipients: [ON_CALL],
    ...(restart ? { fhirDataDir: dataDir, pollIntervalMs: 2000 } : {}),
    // Work whose jobs spent their attempts in the outage is told to the clinic at the next sweep (a clinic: an hour).
    ...(outage
      ? { fhirBaseUrl: proxy?.baseUrl, pollIntervalMs: 2000, deadLetterRevivalMs: 1000, followUpFailingAlertMs: 0 }
      : {}),
    ...(redisCrash ? { redisUrl: redis?.url, pollIntervalMs: 2000 } : {}),
  });
  /** The FHIR server as the EHR and the scheduling system reach it: never through the outage's proxy. */
  const storeUrl = () => store?.baseUrl ?? service.config.fhirBaseUrl!;

  beforeAll(async () => {
    if (restart) dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-clinic-day-'));
    if (redisCrash) redis = await startPrivateRedis({ appendonly: true });
    if (outage) {
      store = await startFhirSandbox();
      proxy = await startFlakyProxy(store.baseUrl);
    }
    service = await startTestService(config());
    if (store) {
      // The EHR's side writes to its server directly; the server notifies the service, as Medplum's Subscriptions do.
      const direct = new FhirClient({ baseUrl: store.baseUrl, maxAttempts: 1 });
      service = { ...service, fhir: direct };
      await subscribeToEmbeddedStore(direct, {
        endpoint: `${service.url}${WEBHOOK_PATH}`,
        secret: TEST_WEBHOOK_SECRET,
      });
    }
  });
  afterAll(async () => {
    await service?.stop();
    await proxy?.close();
    await store?.close();
    await redis?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const clinician = () => service.as('clinician');

  async function enrol(i: number): Promise<Enrolled> {
    const enrolment = await enrolPatient(service, PROTOCOLS[i % PROTOCOLS.length], { weightKg: 60 + i });
    return { ...enrolment, infusions: [], contraindicated: false };
  }

  function note(what: string, res: request.Response, allowed: number[]): void {
    if (faultOn && res.status === 503) return;
    if (!allowed.includes(res.status)) unexpected.push(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /**
   * The EHR's side, straight to the store: an infusion given (the most common), a pregnancy found, an order cancelled
   * or deleted, a plan paused, resumed or stopped, a Task deleted, an infusion recorded in error.
   */
  async function ehrStep(): Promise<void> {
    if (documentedLate.length && random() < 0.15) {
      const late = documentedLate.shift()!;
      const { resource } = await service.fhir.create(late);
      chartedRecords.add(late);
      given.push({ order: resource.request!.reference!.split('/')[1], recorded: resource.meta!.lastUpdated! });
      return;
    }
    const who = pick(enrolled);
    if (EHR_ORDERS && random() < 0.15) return orderedInEhr(who);
    if (EHR_TASK_CLOSINGS && random() < 0.05) return closedInEhr(who);
    if (EHR_TASK_CLOSINGS && random() < 0.03) return setToBeDoneInEhr(who);
    if (EHR_WINDOW_MOVES && random() < 0.05) return movedInEhr(who);
    if (EHR_WINDOW_MOVES && random() < 0.03) return reassignedInEhr(who);
    if (DECEASED && random() < 0.01) return recordedDeceased(who);
    if (DECEASED && deceased.size && random() < 0.03) return deathTakenBack();
    if (EHR_RETIMES && random() < 0.04) return retimedInEhr(who);
    if (EHR_TWICE && random() < 0.03) return chartedTwiceInEhr(who);
    if (EHR_MERGES && random() < 0.02) return mergedInEhr(who);
    if (EHR_PLAN_ENDS && random() < 0.03) return planEndSetInEhr(who);
    const roll = random();
    if (roll < 0.45) {
      // An approved session given at the pump in its window, then the infusion recorded; or one nobody planned.
      const given = PUMP && random() < 0.8 ? await givenAtThePump(who) : undefined;
      const end =
        given?.end ?? new Date(Date.parse('2027-01-04T10:00:00Z') + who.infusions.length * 3 * DAY_MS).toISOString();
      const procedure =
        UNLINKED && given && random() < 0.25
          ? await chartedUnlinked(who, end, given)
          : EHR_EPISODES && random() < 0.33
            ? await chartedUnder(who, end, [await episodeOf(who), `CarePlan/${who.carePlanId}`])
            : await completeInfusion(service, who, end);
      who.infusions.push(procedure);
      // Some EHRs also tell the service (the event API) of what the store notifies: heard twice, followed up once.
      if (random() < 0.3) {
        const told = await request(service.url)
          .post('/events/infusion-completed')
          .set(service.as('integration'))
          .send({ procedure: `Procedure/${procedure}` });
        note('POST /events/infusion-completed', told, [202]);
      }
    } else if (roll < 0.55) {
      // A third of the clinic's patients at most, so most plans carry on and reach the pump.
      if (who.contraindicated || enrolled.filter((e) => e.contraindicated).length >= PATIENTS / 3) return;
      who.contraindicated = true;
      await service.fhir.create<Condition>(activeCondition(PREGNANCY[0], PREGNANCY[1], recordOf(who.patient)));
    } else if (roll < 0.7) {
      const orders = (
        await service.fhir.searchAll<MedicationRequest>('MedicationRequest', { subject: who.patient, status: 'active' })
      ).filter((o) => o.intent === 'order');
      if (orders.length === 0) return;
      const order = pick(orders);
      ehrClosed.add(order.id!);
      const how = random();
      if (how < 0.25) {
        await deleteInStore(`MedicationRequest/${order.id}`);
        const key = order.identifier?.find((i) => i.system === ORDER_KEY_SYSTEM)?.value;
        if (key) deletedOrderKeys.set(`MedicationRequest/${order.id}`, key);
      } else if (DOSE_CHANGES && how < 0.5) {
        // A dose changed in the EHR: its replacement written (priorPrescription) and the order cancelled, in one
        // transaction (If-Match on what it read: somebody else's change first refuses both, the EHR's to retry); now
        // and then by an EHR whose cancel never went, leaving both open (session 38).
        if (random() < 0.5) {
          const { resource } = await service.fhir.create(ehrReplacementOf(order));
          leftOpen.add(resource.id!);
          // Its cancel refused because the order was closed meanwhile (given, closed by the service, or deleted by
          // another of the EHR's steps: seed 2187): the EHR takes its replacement back, as it would on finding the order
          // it replaced already over.
          const replaced = await service.fhir.readIfExists<MedicationRequest>('MedicationRequest', order.id!);
          if (replaced?.status !== 'active' && replaced?.status !== 'on-hold') {
            // The EHR's closing (seed 3317: the pump had begun the replacement in between; the EHR's to answer).
            ehrClosed.add(resource.id!);
            await ehrUpdate({ ...resource, status: 'cancelled' });
          }
        } else
          await service.fhir
            .transaction([
              { resource: ehrReplacementOf(order), request: { method: 'POST', url: 'MedicationRequest' } },
              updateEntry({ ...order, status: 'cancelled' }, order.meta!.versionId),
            ])
            .catch(() => undefined);
      }
      // As an EHR cancels: If-Match on what it read; somebody else's change first is the EHR's to retry.
      else await ehrUpdate({ ...order, status: 'cancelled' });
    } else if (roll < 0.8) {
      // Plans a clinician activated ($activate) are paused, resumed and now and then stopped; a draft one stopped.
      const plan = await service.fhir.read<CarePlan>('CarePlan', who.carePlanId);
      // A plan over (stopped, or completed at its end) is not paused or stopped again (big seed 5312 paused one the
      // service had completed).
      if (plan.status === 'revoked' || plan.status === 'completed') return;
      const next =
        plan.status === 'on-hold' ? 'active' : plan.status === 'draft' || random() < 0.2 ? 'revoked' : 'on-hold';
      if (plan.status === 'draft' && random() < 0.8) return;
      await ehrUpdate({ ...plan, status: next });
    } else if (roll < 0.87) {
      const open = await service.fhir.searchAll<Task>('Task', {
        'based-on': `CarePlan/${who.carePlanId}`,
        status: 'draft,ready,on-hold',
      });
      if (open.length) {
        const deleted = pick(open);
        deletedTasks.push(deleted);
        await deleteInStore(`Task/${deleted.id}`);
      }
    } else if (roll < 0.92) {
      // A contraindication deleted while the patient's record still shows it: found again.
      const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        implicated: `CarePlan/${who.carePlanId}`,
      });
      if (issues.length) await deleteInStore(`DetectedIssue/${pick(issues).id}`);
    } else {
      if (who.infusions.length === 0) return;
      const procedure = await service.fhir.read<Procedure>('Procedure', pick(who.infusions));
      await ehrUpdate({ ...procedure, status: 'entered-in-error' });
    }
  }

  /**
   * The scheduling system, straight to the store: it books an approved session in its protocol window, or cancels or
   * deletes a booking.
   */
  async function schedulingStep(): Promise<void> {
    const who = pick(enrolled);
    const roll = random();
    if (roll < 0.5) {
      const sessions = (
        await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${who.carePlanId}`, status: 'ready' })
      ).filter((t) => t.focus?.reference?.startsWith('MedicationRequest/'));
      if (!sessions.length) return;
      const window = protocolWindowOf(pick(sessions));
      if (!window?.start) return;
      const start = Date.parse(window.start) + HOUR_MS;
      const { resource } = await service.fhir.create<Appointment>({
        resourceType: 'Appointment',
        status: 'booked',
        start: new Date(start).toISOString(),
        end: new Date(start + HOUR_MS).toISOString(),
        participant: [
          { actor: { reference: who.patient }, status: 'accepted' },
          { actor: { reference: 'Practitioner/infusion-nurse' }, status: 'accepted' },
        ],
      });
      appointments.push(resource);
    } else {
      const mine = appointments.filter((a) => a.participant.some((p) => p.actor?.reference === who.patient));
      if (!mine.length) return;
      const booked = await service.fhir.readIfExists<Appointment>('Appointment', pick(mine).id!);
      if (!booked || booked.status !== 'booked') return;
      if (random() < 0.3) await deleteInStore(`Appointment/${booked.id}`);
      else await ehrUpdate({ ...booked, status: 'cancelled' });
    }
  }

  /** A prescriber orders one of the patient's sessions awaiting approval in the EHR itself, for its time. */
  async function orderedInEhr(who: Enrolled): Promise<void> {
    const drafts = (
      await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${who.carePlanId}`, status: 'draft' })
    ).filter((t) => t.focus?.reference?.startsWith('MedicationRequest/') && t.restriction?.period?.start);
    if (!drafts.length) return;
    const session = pick(drafts);
    const proposal = await service.fhir.readIfExists<MedicationRequest>(
      'MedicationRequest',
      session.focus!.reference!.split('/')[1],
    );
    if (proposal) await service.fhir.create(ehrOrderLike(proposal, { start: session.restriction!.period!.start }));
  }

  /** The EHR sets one of the patient's Tasks awaiting approval to be done itself (ready, in progress), unapproved. */
  async function setToBeDoneInEhr(who: Enrolled): Promise<void> {
    const drafts = await service.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${who.carePlanId}`,
      status: 'draft',
    });
    if (!drafts.length) return;
    const task = pick(drafts);
    await ehrUpdate({ ...task, status: random() < 0.7 ? 'ready' : 'in-progress' });
    setToBeDone++;
  }

  /**
   * The EHR moves one of the patient's open Tasks to another window, as long as it was: one to three days earlier or
   * later, now and then (a fifth) two weeks later, past what its protocol allows.
   */
  async function movedInEhr(who: Enrolled): Promise<void> {
    const open = (
      await service.fhir.searchAll<Task>('Task', { 'based-on': `CarePlan/${who.carePlanId}`, status: 'draft,ready' })
    ).filter((t) => t.restriction?.period?.start && t.restriction.period.end);
    if (!open.length) return;
    const task = pick(open);
    const days = random() < 0.2 ? 14 : pick([-3, -2, -1, 1, 2, 3]);
    const { start, end } = task.restriction!.period!;
    const by = (at: string) => new Date(Date.parse(at) + days * DAY_MS).toISOString();
    await ehrUpdate({ ...task, restriction: { ...task.restriction, period: { start: by(start!), end: by(end!) } } });
    windowsMoved++;
  }

  /**
   * The EHR puts one of the patient's completed infusions' time right: its end one to three hours later, its start an
   * hour or two earlier, or (a linked one, a third of the time) the whole of it a day earlier or later. Widening keeps the
   * pump's records of it within it; a whole day only for one linked to its plan (an unlinked one is tied by them).
   */
  async function retimedInEhr(who: Enrolled): Promise<void> {
    if (!who.infusions.length) return;
    const procedure = await service.fhir.read<Procedure>('Procedure', pick(who.infusions));
    const { start, end } = procedure.performedPeriod ?? {};
    if (procedure.status !== 'completed' || !start || !end) return;
    const at = (instant: string, ms: number) => new Date(Date.parse(instant) + ms).toISOString();
    const how = random();
    // Linked to the service's plan: one naming only the EHR's own episode is tied by its pump records too (seed 3772).
    const linked = procedure.basedOn?.some((b) => enrolled.some((e) => b.reference === `CarePlan/${e.carePlanId}`));
    const period =
      linked && how < 0.33
        ? ((d) => ({ start: at(start, d), end: at(end, d) }))(pick([-1, 1]) * DAY_MS)
        : how < 0.66
          ? { start, end: at(end, pick([1, 2, 3]) * HOUR_MS) }
          : { start: at(start, -pick([1, 2]) * HOUR_MS), end };
    await ehrUpdate({ ...procedure, performedPeriod: period });
    retimed.add(procedure.id!);
  }

  /** The EHR charts one of the patient's infusions again, as a new Procedure: the same time, plans and code. */
  async function chartedTwiceInEhr(who: Enrolled): Promise<void> {
    if (!who.infusions.length) return;
    const original = await service.fhir.read<Procedure>('Procedure', pick(who.infusions));
    if (original.status !== 'completed') return;
    const { id: _id, meta: _meta, ...charted } = original;
    const { resource } = await service.fhir.create<Procedure>(charted);
    chartedCopies.set(resource.id!, original.id!);
    who.infusions.push(resource.id!);
  }

  /** The EHR records the patient as deceased: one patient in eight at most, so most plans carry on. */
  async function recordedDeceased(who: Enrolled): Promise<void> {
    if (deceased.has(who.patient) || deceased.size >= PATIENTS / 8) return;
    const record = recordOf(who.patient);
    const patient = await service.fhir.read<Patient>('Patient', record.split('/')[1]);
    await ehrUpdate({ ...patient, deceasedDateTime: '2026-12-01T08:00:00Z' });
    // Not when another write to the record (a merge) came first.
    if (!(await service.fhir.read<Patient>('Patient', record.split('/')[1])).deceasedDateTime) return;
    deceased.add(who.patient);
    deathRecordOf.set(who.patient, record);
  }

  /**
   * The EHR merges the patient's record into a new one (one patient in eight at most; none whose death was recorded,
   * so a death and its taking back stay on one record): the plan stays under the old record. A record merged already
   * is now and then merged again, the record kept into a newer one (session 49: A into B, then B into C; C links B
   * only), once.
   */
  async function mergedInEhr(picked: Enrolled): Promise<void> {
    // As often as not, a patient merged once already is merged again.
    const onceMerged = [...keptRecordOf.keys()].filter((p) => !mergedTwice.has(p) && !deathRecordOf.has(p));
    const patient = onceMerged.length && random() < 0.5 ? pick(onceMerged) : picked.patient;
    const again = keptRecordOf.has(patient);
    if (deathRecordOf.has(patient) || (again ? mergedTwice.has(patient) : keptRecordOf.size >= PATIENTS / 8)) return;
    const record = recordOf(patient);
    const { resource: kept } = await service.fhir.create<Patient>({
      resourceType: 'Patient',
      name: [{ family: 'Merged' }],
      link: [{ other: { reference: record }, type: 'replaces' }],
    });
    const old = await service.fhir.read<Patient>('Patient', record.split('/')[1]);
    if (old.deceasedDateTime) return;
    await ehrUpdate<Patient>({
      ...old,
      active: false,
      // What it replaced stays linked (a record merged twice links both).
      link: [
        ...(old.link ?? []).filter((l) => l.type !== 'replaced-by'),
        { other: { reference: `Patient/${kept.id}` }, type: 'replaced-by' },
      ],
    });
    // Not when another write to the record (a death) came first.
    if ((await service.fhir.read<Patient>('Patient', record.split('/')[1])).active !== false) return;
    keptRecordOf.set(patient, `Patient/${kept.id}`);
    if (again) mergedTwice.add(patient);
  }

  /**
   * The EHR ends the patient's plan on a date 1 to 8 weeks into the course, or (a third) two days ago (half a date
   * alone, the whole clinic day; half a dateTime), or, a plan with an end already, half the time extends it (the end
   * removed: the service proposes what the end kept out, and makes a plan it completed active again). If-Match on what
   * it read, as an EHR writes.
   */
  async function planEndSetInEhr(who: Enrolled): Promise<void> {
    const plan = await service.fhir.read<CarePlan>('CarePlan', who.carePlanId);
    if (plan.period?.end && random() < 0.5) {
      const { end: _end, ...period } = plan.period;
      return ehrUpdate<CarePlan>({ ...plan, period });
    }
    const passed = random() < 0.35;
    const end = passed
      ? new Date(Date.now() - 2 * DAY_MS)
      : new Date(Date.parse('2027-01-01T00:00:00Z') + (7 + Math.floor(random() * 50)) * DAY_MS);
    const at = random() < 0.5 ? end.toISOString().slice(0, 10) : new Date(end.getTime() + 15 * HOUR_MS).toISOString();
    // A passed end before the plan's start (the course called off before it began): written as it is (Medplum's
    // validation does not hold a Period to per-1), or half the time with the start moved to it, which times what an
    // override proposes from then on (session 50: before, an override then wrote a second plan; seeds 3196, 3201, 3203).
    const moveStart = Boolean(plan.period?.start && plan.period.start > at) && random() < 0.5;
    await ehrUpdate<CarePlan>({ ...plan, period: { ...plan.period, ...(moveStart ? { start: at } : {}), end: at } });
    planEndsSet++;
    if (passed) planEndsPassed++;
  }

  /** A course whose end (set in the EHR) has passed: every Task left open under it cancelled in the EHR. */
  async function wrappedUpInEhr(who: Enrolled): Promise<void> {
    const plan = await service.fhir.read<CarePlan>('CarePlan', who.carePlanId);
    const ends = planEndsAt(plan, service.config.clinicTimeZone);
    if (ends === undefined || ends > Date.now()) return;
    const open = await service.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${who.carePlanId}`,
      status: OPEN_STATUSES.join(','),
    });
    for (const task of open) await taskClosedInEhr(who, task, 'cancelled');
    wrappedUp++;
  }

  /** The EHR takes a death back (recorded in error): the patient's record no longer says deceased. */
  async function deathTakenBack(): Promise<void> {
    const who = pick([...deceased]);
    const record = deathRecordOf.get(who) ?? who;
    const { deceasedDateTime: _, ...alive } = await service.fhir.read<Patient>('Patient', record.split('/')[1]);
    await ehrUpdate(alive);
    deceased.delete(who);
    deathsTakenBack.add(who);
  }

  /** The EHR gives one of the patient's open Tasks to someone else (Task.owner), or to nobody. */
  async function reassignedInEhr(who: Enrolled): Promise<void> {
    const open = await service.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${who.carePlanId}`,
      status: 'draft,ready',
    });
    if (!open.length) return;
    const task = pick(open);
    const owner = pick(['Practitioner/infusion-nurse', 'Practitioner/on-call-psychiatrist', undefined]);
    const { owner: _previous, ...rest } = task;
    await ehrUpdate(owner ? { ...rest, owner: { reference: owner } } : rest);
    reassigned++;
  }

  /**
   * The patient's care episode in the EHR, written once: a CarePlan of its own instantiating no protocol, or a care
   * pathway instantiating the EHR's own PlanDefinition (on the same server; it follows up no infusion).
   */
  const episodes = new Map<string, Promise<string>>();
  let ehrPathway: Promise<unknown> | undefined;
  function episodeOf(who: Enrolled): Promise<string> {
    if (!episodes.has(who.patient)) {
      const protocol = random() < 0.5 ? EHR_PATHWAY_PROTOCOL : undefined;
      // The EHR's care pathway protocol posted once, before the first pathway.
      if (protocol) ehrPathway ??= service.fhir.create(protocol);
      episodes.set(
        who.patient,
        Promise.resolve(protocol && ehrPathway)
          .then(() => service.fhir.create(ehrCarePlan(who.patient, protocol)))
          .then(({ resource }) => `CarePlan/${resource.id}`),
      );
    }
    return episodes.get(who.patient)!;
  }

  /** An infusion charted by the EHR under these plans (`basedOn`, in this order). */
  async function chartedUnder(who: Enrolled, end: string, plans: string[]): Promise<string> {
    const { resource } = await service.fhir.create<Procedure>({
      resourceType: 'Procedure',
      status: 'completed',
      code: { coding: [{ system: 'http://snomed.info/sct', code: '14152002', display: 'Intravenous infusion' }] },
      subject: { reference: who.patient },
      ...(plans.length ? { basedOn: plans.map((reference) => ({ reference })) } : {}),
      performedPeriod: { start: new Date(Date.parse(end) - HOUR_MS).toISOString(), end },
    });
    return resource.id!;
  }

  /** An infusion charted as an EHR that does not link its charting: no `basedOn`, or only its own care episode. */
  async function chartedUnlinked(
    who: Enrolled,
    end: string,
    given: { record: MedicationAdministration; session: string },
  ): Promise<string> {
    const id = await chartedUnder(who, end, EHR_EPISODES && random() < 0.5 ? [await episodeOf(who)] : []);
    unlinkedCharted.set(id, given.record);
    // Now and then the EHR closes the session itself, naming the infusion as what it produced (Task.output): that ties
    // it to its plan too (session 48).
    if (random() < 0.3) {
      // Deleted by another of the EHR's steps meanwhile (big seed 5303): nothing to close.
      const session = await service.fhir.readIfExists<Task>('Task', given.session);
      if (session && ['ready', 'in-progress', 'accepted'].includes(session.status)) {
        await ehrUpdate({
          ...session,
          status: 'completed',
          output: [
            ...(session.output ?? []),
            { type: { text: 'Infusion given' }, valueReference: { reference: `Procedure/${id}` } },
          ],
        });
        if ((await service.fhir.readIfExists<Task>('Task', session.id!))?.status === 'completed') {
          closedByEhr.set(session.id!, 'completed');
          completedNaming.add(id);
        }
      }
    }
    unlinkedPlanOf.set(id, `CarePlan/${who.carePlanId}`);
    return id;
  }

  /**
   * The EHR closes one of the patient's open Tasks by its status alone: an approved session completed or cancelled, a
   * proposal cancelled. Its orders are the EHR's to have closed from then on (the reconciliation closes them as the
   * status says).
   */
  async function closedInEhr(who: Enrolled): Promise<void> {
    const open = await service.fhir.searchAll<Task>('Task', {
      'based-on': `CarePlan/${who.carePlanId}`,
      status: 'draft,ready,in-progress',
    });
    if (!open.length) return;
    const task = pick(open);
    await taskClosedInEhr(who, task, task.status !== 'draft' && random() < 0.5 ? 'completed' : 'cancelled');
  }

  async function taskClosedInEhr(who: Enrolled, task: Task, status: Task['status']): Promise<void> {
    const orders = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      subject: who.patient,
      intent: 'order',
      _count: 200,
    });
    for (const o of orders)
      if (
        o.identifier?.some((i) => i.system === ORDER_KEY_SYSTEM && i.value === `Task/${task.id}`) ||
        ordersApprovedOn(task).includes(`MedicationRequest/${o.id}`)
      )
        ehrClosed.add(o.id!);
    const closed = await service.fhir
      .update<Task>({ ...task, status }, { ifMatch: task.meta!.versionId })
      .catch(() => undefined);
    if (closed) closedByEhr.set(task.id!, status);
  }

  /**
   * The pump gives an approved session's order an hour into its window (a MedicationAdministration naming the order):
   * when the infusion ends, for its Procedure; undefined when the patient has no session to give.
   */
  async function givenAtThePump(
    who: Enrolled,
  ): Promise<{ end: string; record: MedicationAdministration; session: string } | undefined> {
    const sessions = (
      await service.fhir.searchAll<Task>('Task', {
        'based-on': `CarePlan/${who.carePlanId}`,
        status: TO_BE_DONE_SEARCH,
      })
    ).filter(
      (t) => isApproved(t) && t.focus?.reference?.startsWith('MedicationRequest/') && t.restriction?.period?.start,
    );
    if (!sessions.length) return undefined;
    const session = pick(sessions);
    // The order the nurse gives: the one its approval wrote, or the EHR's it was approved on, else the EHR's latest
    // replacement of those (a dose changed there), at any depth.
    const patientOrders = await service.fhir.searchAll<MedicationRequest>('MedicationRequest', {
      subject: who.patient,
      intent: 'order',
      _count: 200,
    });
    const chain = patientOrders.filter(
      (o) =>
        o.identifier?.some((i) => i.system === ORDER_KEY_SYSTEM && i.value === `Task/${session.id}`) ||
        ordersApprovedOn(session).includes(`MedicationRequest/${o.id}`),
    );
    for (let grew = true; grew;) {
      const refs = new Set(chain.map((o) => `MedicationRequest/${o.id}`));
      const next = patientOrders.filter((o) => !chain.includes(o) && refs.has(o.priorPrescription?.reference ?? ''));
      chain.push(...next);
      grew = next.length > 0;
    }
    const order = chain.filter((o) => o.status === 'active').at(-1);
    if (!order) return undefined;
    // The nurse starts it in the EHR first (its Task in progress), now and then.
    if (EHR_BEGINS && session.status === 'ready' && random() < 0.3) {
      await ehrUpdate({ ...session, status: 'in-progress' });
      begunInEhr++;
    }
    if (!order.identifier?.some((i) => i.system === ORDER_KEY_SYSTEM)) ehrOrdersGiven++;
    const start = Date.parse(session.restriction!.period!.start!) + HOUR_MS;
    const administration = administrationOf(order, 'completed', {
      start: new Date(start).toISOString(),
      end: new Date(start + HOUR_MS - 60_000).toISOString(),
    });
    const ordered = order.dosageInstruction?.[0]?.doseAndRate?.find((d) => d.rateQuantity?.code === 'mg/h')
      ?.rateQuantity?.value;
    if (ordered && random() < 0.35) {
      // Documented later, lowered at the pump to three quarters: the next session's rate is judged again then.
      const late = { ...administration, dosage: { rateQuantity: ucum(Math.round(ordered * 0.75), 'mg/h') } };
      documentedLate.push(late);
      return { end: new Date(start + HOUR_MS).toISOString(), record: late, session: session.id! };
    }
    const { resource } = await service.fhir.create(administration);
    given.push({ order: order.id!, recorded: resource.meta!.lastUpdated! });
    chartedRecords.add(administration);
    return { end: new Date(start + HOUR_MS).toISOString(), record: administration, session: session.id! };
  }

  async function ehrUpdate<T extends Resource>(resource: T): Promise<void> {
    await service.fhir.update<T>(resource, { ifMatch: resource.meta!.versionId }).catch(() => undefined);
  }

  async function deleteInStore(reference: string): Promise<void> {
    await fetch(`${storeUrl()}/${reference}`, { method: 'DELETE' });
  }

  /** A clinician's side: a list read, then a decision on one of its items, on the version the list showed. */
  async function clinicianStep(): Promise<void> {
    if (random() < 0.08) return overrideStep();
    if (random() < 0.08) return activateStep();
    const list = random() < 0.75 ? '/worklist' : '/to-do';
    const query: Record<string, string> = { count: '20' };
    if (random() < 0.3) query.patient = pick(enrolled).patient;
    const page = await request(service.url).get(list).query(query).set(clinician());
    note(`GET ${list}`, page, [200]);
    const items = (page.body.items ?? []) as WorklistEntry[];
    if (items.length === 0) return;
    // Sessions (a medication to order) half the time, when the page has any: the checks come due first.
    const sessions = items.filter((i) => i.request?.startsWith('MedicationRequest/'));
    const item = sessions.length && random() < 0.5 ? pick(sessions) : pick(items);
    const roll = random();
    if (DOSE_CHANGES && list === '/to-do' && item.request?.startsWith('MedicationRequest/') && roll < 0.25) {
      // The dose of an approved session changed before it is given (its order replaced).
      const res = await request(service.url)
        .post(`/tasks/${item.id}/$change-dose`)
        .set(clinician())
        .send({ versionId: item.versionId, rate: { value: 0.5, unit: 'mg/kg/h' }, reason: 'weighed again' });
      note('$change-dose', res, [200, ...EXPECTED_REFUSALS]);
      if (res.status === 200)
        decisions.push({ taskId: item.id, seenVersion: item.versionId!, decision: 'change-dose' });
      return;
    }
    if (list === '/worklist' && roll < 0.15) {
      const some = items.slice(0, 3).map((i) => ({ id: i.id, versionId: i.versionId }));
      const res = await request(service.url).post('/tasks/$bulk-approve').set(clinician()).send({ tasks: some });
      note('$bulk-approve', res, [200]);
      for (const r of (res.body.results ?? []) as { id: string; result: string; status?: number }[])
        if (r.result === 'approved')
          decisions.push({
            taskId: r.id,
            seenVersion: some.find((s) => s.id === r.id)!.versionId!,
            decision: 'approve',
          });
        else if (!EXPECTED_REFUSALS.includes(r.status!) && !(faultOn && r.status === 503))
          unexpected.push(`$bulk-approve item: ${JSON.stringify(r)}`);
      return;
    }
    if (item.action === 'post-infusion-check' && roll < 0.5) {
      // The check's answers recorded: pain, and now and then an effect a clinician must review.
      const effects = [random() < 0.7 ? 'effect-none' : pick(['effect-nausea', 'effect-hallucinations'])];
      const res = await request(service.url)
        .post(`/tasks/${item.id}/$complete`)
        .set(clinician())
        .send({ versionId: item.versionId, response: checkAnswers(Math.floor(random() * 10), effects) });
      note('$complete', res, [200, ...EXPECTED_REFUSALS]);
      if (res.status === 200) decisions.push({ taskId: item.id, seenVersion: item.versionId!, decision: 'complete' });
      return;
    }
    const window = item.allowedWindow ?? item.due ?? {};
    const [decision, body] =
      list === '/worklist' && roll < 0.7
        ? ['approve', {}]
        : roll < 0.85
          ? ['reschedule', { start: window.start, end: window.end }]
          : ['reject', { reason: 'not today' }];
    const res = await request(service.url)
      .post(`/tasks/${item.id}/$${decision}`)
      .set(clinician())
      .send({ versionId: item.versionId, ...body });
    note(`$${decision}`, res, [200, ...EXPECTED_REFUSALS]);
    if (res.status === 200) decisions.push({ taskId: item.id, seenVersion: item.versionId!, decision });
    // Already ordered in the EHR for its time: approved on that order, as the page's dialog offers.
    const ordered = (res.body?.issue as { code?: string; expression?: string[] }[] | undefined)?.find(
      (i) => i.code === 'duplicate',
    )?.expression?.[0];
    if (decision === 'approve' && res.status === 409 && ordered && random() < 0.8) {
      const onOrder = await request(service.url)
        .post(`/tasks/${item.id}/$approve`)
        .set(clinician())
        .send({ versionId: item.versionId, onOrder: ordered });
      note('$approve onOrder', onOrder, [200, ...EXPECTED_REFUSALS]);
      if (onOrder.status === 200) {
        decisions.push({ taskId: item.id, seenVersion: item.versionId!, decision });
        approvedOnEhrOrders++;
      }
    }
    // Another of the patient's plans has a session approved for these days: now and then approved beside it.
    const besideIt = (res.body?.issue as { code?: string; expression?: string[] }[] | undefined)?.find(
      (i, k) => k > 0 && i.code === 'conflict' && i.expression?.some((e) => e.startsWith('Task/')),
    )?.expression?.[0];
    if (besideIt) refusedForOtherPlan++;
    if (decision === 'approve' && res.status === 409 && besideIt && random() < 0.5) {
      const beside = await request(service.url)
        .post(`/tasks/${item.id}/$approve`)
        .set(clinician())
        .send({ versionId: item.versionId, alongside: [besideIt] });
      note('$approve beside another plan', beside, [200, ...EXPECTED_REFUSALS]);
      if (beside.status === 200) {
        decisions.push({ taskId: item.id, seenVersion: item.versionId!, decision });
        approvedBesideOtherPlan++;
      }
    }
    // Due outside its protocol window (moved in the EHR, or its infusion re-timed): mostly approved there with a reason,
    // as the page's dialog asks.
    const outside = (res.body?.issue as { expression?: string[] }[] | undefined)?.some((i) =>
      i.expression?.includes('Task.restriction.period'),
    );
    if (decision === 'approve' && res.status === 422 && outside && random() < 0.7) {
      const there = await request(service.url)
        .post(`/tasks/${item.id}/$approve`)
        .set(clinician())
        .send({ versionId: item.versionId, outsideWindowReason: 'Agreed with the prescriber' });
      note('$approve outside its window', there, [200, ...EXPECTED_REFUSALS]);
      if (there.status === 200) {
        decisions.push({ taskId: item.id, seenVersion: item.versionId!, decision });
        approvedOutsideWindow++;
      }
    }
  }

  /** A clinician activates a draft plan ($activate on the version read); refused while contraindicated. */
  async function activateStep(): Promise<void> {
    const who = pick(enrolled);
    const plan = await service.fhir.read<CarePlan>('CarePlan', who.carePlanId);
    if (plan.status !== 'draft') return;
    const res = await request(service.url)
      .post(`/careplans/${plan.id}/$activate`)
      .set(clinician())
      .send({ versionId: plan.meta!.versionId });
    note('$activate', res, [200, 404, 409, 412, 422]);
  }

  /** A clinician overrides one of a plan's open issues, with a reason, on the version read. */
  async function overrideStep(): Promise<void> {
    const who = pick(enrolled);
    const open = (
      await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { implicated: `CarePlan/${who.carePlanId}` })
    ).filter(isUnresolved);
    if (open.length === 0) return;
    const issue = pick(open);
    // An infusion charted naming no plan (session 47): the clinician knows the session it was, and links it there.
    const unlinked = isInfusionNotLinked(issue) ? unlinkedPlanOf.get(infusionNotLinkedOf(issue) ?? '') : undefined;
    if (unlinked) {
      const linked = await request(service.url)
        .post(`/detected-issues/${issue.id}/$link-infusion`)
        .set(clinician())
        .set('If-Match', `W/"${issue.meta!.versionId}"`)
        .send({ carePlan: unlinked });
      // 409: taken back in the EHR or linked there meanwhile; 422: not one of the plans it may be (another's session).
      note('$link-infusion', linked, [200, 404, 409, 412, 422]);
      if (linked.status === 200) {
        overrides.push(issue.id!);
        linkedByClinician++;
      }
      return;
    }
    // An infusion recorded in error: half the time planned again without it (session 41), else kept as planned.
    const replan = isInfusionInError(issue) && random() < 0.5;
    const res = await request(service.url)
      .post(`/detected-issues/${issue.id}/${replan ? '$replan' : '$override'}`)
      .set(clinician())
      .set('If-Match', `W/"${issue.meta!.versionId}"`)
      .send({ reason: replan ? 'Charted on the wrong patient' : 'Reviewed with the patient today' });
    // 422: the patient was recorded as deceased since (nothing is approved for them).
    note(replan ? '$replan' : '$override', res, [200, 404, 409, 412, 422]);
    if (res.status === 200) overrides.push(issue.id!);
    if (res.status === 200 && replan) replanned.push(issue.id!);
  }

  /**
   * What runs beside them on a schedule: the sweep (overdue, stopped and paused plans, contraindications, closed
   * orders) and the lists' reconciliation from the store.
   */
  async function maintenanceStep(): Promise<void> {
    const roll = random();
    const run = async () => {
      if (roll < 0.5) await runMaintenance(JOBS.overdueSweep);
      else if (roll < 0.75) await service.app.get(WorklistIndex).rebuild();
      else await service.app.get(ToDoIndex).rebuild();
    };
    // With the FHIR server or Redis down, a sweep or a rebuild fails, as its scheduled run would: the next one does it.
    if (faultOn) await run().catch(() => undefined);
    else await run();
  }

  /** A maintenance job run at once, as its schedule runs it. */
  async function runMaintenance(name: string): Promise<void> {
    const job = { name, updateProgress: () => Promise.resolve() } as unknown as Job;
    await service.app.get(MaintenanceProcessor).process(job);
  }

  /**
   * An eighth of the day with a fault on (the FHIR server or Redis down for the service: its 503s are what a caller
   * may get), everyone carrying on; `end` ends the fault three seconds in, or once the steps are done too.
   */
  async function withFault(fault: { endAfterSteps: boolean; end: () => unknown }): Promise<void> {
    faultOn = true;
    const threeSeconds = new Promise((resolve) => setTimeout(resolve, 3000));
    const eighth = Promise.all([
      steps(EHR_STEPS / 8, ehrStep),
      steps(CLINICIAN_STEPS / 8, clinicianStep),
      steps(EHR_STEPS / 16, schedulingStep),
      steps(EHR_STEPS / 32, maintenanceStep),
    ]);
    const ended = (fault.endAfterSteps ? Promise.all([eighth, threeSeconds]) : threeSeconds).then(fault.end);
    await Promise.all([eighth, ended]);
    faultOn = false;
  }

  async function steps(n: number, step: () => Promise<void>): Promise<void> {
    for (let i = 0; i < Math.ceil(n); i++) await step();
  }

  /** Nothing left to do: the store has delivered every notification and no queue has a job to run (but its crons). */
  async function settled(): Promise<void> {
    const pendingNotifications = async () => {
      if (store) return (await store.storageStats!()).notifications?.pending ?? NaN;
      const metrics = (await request(service.url).get('/metrics').expect(200)).text;
      return Number(/^kc_fhir_store_notifications_pending (\d+)/m.exec(metrics)?.[1] ?? NaN);
    };
    const busy = async () => {
      let jobs = 0;
      for (const name of Object.values(QUEUES)) {
        const queue = service.app.get<Queue>(getQueueToken(name));
        const counts = await queue.getJobCounts('waiting', 'prioritized', 'waiting-children', 'active');
        // And, after an outage, the jobs it failed for good until the worker has tried them again (not the sweeps').
        if (outage) jobs += (await queue.getFailed()).filter((j) => !j.repeatJobKey).length;
        jobs += Object.values(counts).reduce((a, b) => a + b, 0);
        // Delayed jobs but the repeatable sweeps' next runs (a retry's backoff, a job timed soon).
        const delayed = await queue.getDelayed();
        jobs += delayed.filter((j) => !j.repeatJobKey && Number(j.opts.delay ?? 0) < 60_000).length;
      }
      return jobs + (await pendingNotifications());
    };
    // Idle three probes in a row: a job's writes notify again, and that notification queues a job.
    let idleProbes = 0;
    await waitFor(
      async () => {
        idleProbes = (await busy()) === 0 ? idleProbes + 1 : 0;
        return idleProbes >= 3;
      },
      'the store and the queues to settle',
      // After an outage the worker's last try of a dead letter may be 16 s away (1 s doubled after each failure).
      outage ? 120_000 : 60_000,
    );
  }

  /** Every item of a list, each as `<id> <due window> <owner>`: what a clinician reads of it. */
  async function allPages(list: string): Promise<string[]> {
    const items: string[] = [];
    let url: string | undefined = `${list}?count=50`;
    while (url) {
      const res: request.Response = await request(service.url).get(url).set(clinician()).expect(200);
      items.push(...(res.body.items as WorklistEntry[]).map((i) => listed(i.id, i.due, i.owner?.reference)));
      url = (res.body.next as string | undefined)?.replace(/^.*?(\/(worklist|to-do))/, '$1');
    }
    return items.sort();
  }

  function listed(id: string, due: { start?: string; end?: string } | undefined, owner: string | undefined): string {
    const at = (instant: string | undefined) => (instant ? new Date(instant).toISOString() : '-');
    return `${id} ${at(due?.start)}..${at(due?.end)} ${owner ?? 'nobody'}`;
  }

  /**
   * Orders at odds with their plan (left to give under a plan that authorises none, or held under one clear of issues),
   * written to /tmp/kc-debug-<seed>-<time>.json with what explains them: the plan's and each order's history (and the
   * order written here it replaces), the pump's records, its session's history, the Provenances naming them, the
   * patient's infusions.
   */
  async function dumpOrdersAtOdds(plan: CarePlan, atOdds: MedicationRequest[]): Promise<void> {
    const get = async (url: string) => (await fetch(`${service.config.fhirBaseUrl}/${url}`)).json();
    const provenances = await service.fhir.searchAll<Provenance>('Provenance', { _count: 1000 });
    const orders = [];
    for (const order of atOdds) {
      let ours = order;
      while (ours.priorPrescription?.reference && !ours.identifier?.some((i) => i.system === ORDER_KEY_SYSTEM))
        ours = (await get(ours.priorPrescription.reference)) as MedicationRequest;
      const key = ours.identifier?.find((i) => i.system === ORDER_KEY_SYSTEM)?.value;
      const named = [`MedicationRequest/${order.id}`, `MedicationRequest/${ours.id}`, key];
      orders.push({
        history: await get(`MedicationRequest/${order.id}/_history`),
        replacedHistory: ours !== order ? await get(`MedicationRequest/${ours.id}/_history`) : undefined,
        administrations: await get(`MedicationAdministration?request=MedicationRequest/${order.id}`),
        taskHistory: key ? await get(`${key}/_history`) : undefined,
        provenances: provenances.filter((p) => p.target.some((t) => named.includes(t.reference))),
      });
    }
    const taskHistories: unknown[] = [];
    for (const a of plan.activity ?? [])
      if (a.reference?.reference) taskHistories.push(await get(`${a.reference.reference}/_history`));
    const dump = {
      plan: await get(`CarePlan/${plan.id}/_history`),
      orders,
      infusions: await get(`Procedure?patient=${plan.subject.reference}`),
      patientOrders: await get(`MedicationRequest?subject=${plan.subject.reference}&_count=200`),
      // The plan's issues and every Task's history: which job saw what, when (session 41 needed them for seed 1656).
      issues: await get(`DetectedIssue?implicated=CarePlan/${plan.id}&_count=200`),
      tasks: await get(`Task?based-on=CarePlan/${plan.id}&_count=200`),
      taskHistories,
      administrations: await get(`MedicationAdministration?patient=${plan.subject.reference}&_count=200`),
      given,
    };
    fs.writeFileSync(`/tmp/kc-debug-${SEED}-${Date.now()}.json`, JSON.stringify(dump, null, 1));
  }

  it(`holds what a clinic relies on (seed ${SEED})`, async () => {
    for (let i = 0; i < PATIENTS; i++) enrolled.push(await enrol(i));
    if (TWO_PLANS)
      for (const [i, first] of enrolled.slice(0, PATIENTS).entries()) {
        if (i % 6 !== 4) continue;
        const second = await applyPlan(service, PROTOCOLS[(i + 1) % PROTOCOLS.length], first.patient);
        enrolled.push({ patient: first.patient, carePlanId: second.id!, infusions: [], contraindicated: false });
      }
    const halfDay = () =>
      Promise.all([
        steps(EHR_STEPS / 2, ehrStep),
        steps(EHR_STEPS / 2, ehrStep),
        steps(CLINICIAN_STEPS / 2, clinicianStep),
        steps(CLINICIAN_STEPS / 2, clinicianStep),
        steps(EHR_STEPS / 4, schedulingStep),
        steps(EHR_STEPS / 16, maintenanceStep),
      ]);
    await halfDay();
    if (restart) {
      // Stopped with its jobs and the store's notifications in flight (not settled), started on the same data and
      // the same queues, as a deployment restarts it.
      const { queuePrefix } = service.config;
      await service.stop();
      service = await startTestService({ ...config(), queuePrefix });
    }
    if (outage) {
      // Down for the service until the steps are done and three seconds at least (past every job's retries, 1.5 s
      // here); then back.
      proxy!.down = true;
      await withFault({ endAfterSteps: true, end: () => void (proxy!.down = false) });
      outageRefused = proxy!.refused;
    }
    if (redisCrash) {
      // Killed with everything in flight; started again on its AOF three seconds later, as an operator's supervisor
      // would (not when the steps are done: a command the service waits on waits for Redis).
      await redis!.kill();
      await withFault({ endAfterSteps: false, end: () => redis!.start() });
      await everyWorkerConnected(service);
    }
    await halfDay();
    await settled();
    // The clinic wraps up the courses the EHR ended before today: what is left open under them (checks nobody will
    // do, instructions) is cancelled in the EHR, so the sweep below finds them over and completes them (session 50).
    if (EHR_PLAN_ENDS) {
      for (const who of enrolled) await wrappedUpInEhr(who);
      await settled();
    }
    // What the polls and the sweep do within their periods (30 s, 15 min): find what a notification lost in a stop
    // told, and put right a write that lost a race with no job to run it again (a clinician's override whose release
    // raced another write, say). The invariants below are what a clinic can rely on once they have run.
    if (restart) await runMaintenance(JOBS.pollProcedures);
    await runMaintenance(JOBS.overdueSweep);
    await settled();
    // The EHR then charts, late, an infusion given on the last day of a course the service completed at its end (from
    // an order of its own): the plan is active again for the infusion's check (session 51; before, it was ignored).
    const chartedAfterCompletion: { who: Enrolled; procedure: string }[] = [];
    if (EHR_PLAN_ENDS) {
      for (const who of enrolled) {
        const plan = await service.fhir.read<CarePlan>('CarePlan', who.carePlanId);
        const ends = planEndsAt(plan, service.config.clinicTimeZone);
        if (!isCompletedAtItsEnd(plan) || ends === undefined) continue;
        const end = new Date(Math.min(ends, Date.now()) - 2 * HOUR_MS).toISOString();
        const procedure = await chartedUnder(who, end, [`CarePlan/${who.carePlanId}`]);
        who.infusions.push(procedure);
        chartedAfterCompletion.push({ who, procedure });
      }
      await settled();
    }
    expect(unexpected).toEqual([]);
    expect(decisions.length).toBeGreaterThan(10);
    if (outage) expect(outageRefused).toBeGreaterThan(0);

    const tasks = await service.fhir.searchAll<Task>('Task', { _count: 1000 });
    const orders = [
      ...(await service.fhir.searchAll<MedicationRequest>('MedicationRequest', { _count: 1000 })).filter(
        (o) => o.intent === 'order',
      ),
      // R4 CommunicationRequest has no intent: the service's orders carry its order key.
      ...(await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', { _count: 1000 })).filter((o) =>
        o.identifier?.some((i) => i.system === ORDER_KEY_SYSTEM),
      ),
    ];
    // The service's plans (those enrolled), not the EHR's own care episodes and pathways.
    const allPlans = await service.fhir.searchAll<CarePlan>('CarePlan', { _count: 1000 });
    const plans = allPlans.filter((p) => enrolled.some((e) => e.carePlanId === p.id));
    // Every plan the service wrote is one the clinic applied: none written again beside it (session 50: an override on
    // a plan whose start the EHR moved wrote a second plan; seeds 3196, 3201, 3203).
    expect(
      allPlans
        .filter((p) => p.identifier?.some((i) => i.system === CAREPLAN_KEY_SYSTEM) && !plans.includes(p))
        .map((p) => `${p.id} ${p.subject?.reference} ${p.status}`),
    ).toEqual([]);
    const issues = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', { _count: 1000 });
    // An infusion charted under a plan the service completed at its end has its check, the plan active again for it.
    for (const { who, procedure } of chartedAfterCompletion) {
      const checks = tasks
        .filter((t) => t.reasonReference?.reference === `Procedure/${procedure}`)
        .map((t) => `${actionOf(t)} ${OPEN_STATUSES.includes(t.status) ? 'open' : t.status}`);
      const plan = plans.find((p) => p.id === who.carePlanId)?.status;
      expect({ procedure, plan, checks }).toEqual({ procedure, plan: 'active', checks: ['post-infusion-check open'] });
    }
    const planOf = (r: { basedOn?: { reference?: string }[] }) =>
      r.basedOn?.find((b) => b.reference?.startsWith('CarePlan/'))?.reference;
    // An order's session: the Task whose approval wrote it (its key), or that was approved on it (`onOrder`), or that
    // of the order it replaces (priorPrescription), at any depth; and so its plan, for the EHR's own orders too.
    const sessionOfOrder = (o: (typeof orders)[number], seen = new Set<string>()): Task | undefined => {
      const key = o.identifier?.find((i) => i.system === ORDER_KEY_SYSTEM)?.value;
      if (key) return tasks.find((t) => `Task/${t.id}` === key);
      const on = tasks.find((t) => ordersApprovedOn(t).includes(`MedicationRequest/${o.id}`));
      if (on) return on;
      const prior = (o as MedicationRequest).priorPrescription?.reference;
      const replaced = orders.find((x) => `MedicationRequest/${x.id}` === prior);
      return replaced && !seen.has(prior!) ? sessionOfOrder(replaced, seen.add(prior!)) : undefined;
    };
    const planOfOrder = (o: (typeof orders)[number]) => planOf(o) ?? planOf(sessionOfOrder(o) ?? {});
    const openIssuesOf = (plan: string) =>
      issues.filter((i) => isUnresolved(i) && i.implicated?.some((r) => r.reference === plan));

    // Every pregnancy the EHR recorded was found where it matters: an issue on the patient's plan (open, or overridden
    // by a clinician) while the plan holds care and has anything open that a contraindication gates.
    const OPEN: string[] = [...OPEN_STATUSES];
    for (const who of enrolled.filter((e) => e.contraindicated)) {
      const ref = `CarePlan/${who.carePlanId}`;
      const plan = plans.find((p) => p.id === who.carePlanId)!;
      const open = tasks
        .filter((t) => planOf(t) === ref && OPEN.includes(t.status) && actionOf(t) !== 'post-infusion-check')
        .map((t) => `${t.id} ${t.status} ${actionOf(t)}`);
      if (open.length === 0 || plan.status === 'on-hold' || plan.status === 'revoked') continue;
      const found = issues.some(
        (i) => i.implicated?.some((r) => r.reference === ref) && i.code?.coding?.some((c) => c.code === 'pregnancy'),
      );
      expect({ patient: who.patient, plan: plan.status, open, found }).toEqual({
        patient: who.patient,
        plan: plan.status,
        open,
        found: true,
      });
    }

    // A plan with an open issue (a contraindication, an infusion in error), paused or ended has no order to give,
    // and nothing under it a clinician could approve.
    const ordersBegunAtPump = new Set(
      (await service.fhir.searchAll<MedicationAdministration>('MedicationAdministration', { _count: 1000 }))
        .filter((a) => a.status === 'in-progress' || a.status === 'completed')
        .map((a) => a.request?.reference),
    );
    /** A session whose order the pump has begun (or given): left to its infusion, whatever its plan. */
    const begunAtThePump = (t: Task) =>
      orders.some((o) => sessionOfOrder(o)?.id === t.id && ordersBegunAtPump.has(`MedicationRequest/${o.id}`));
    for (const plan of plans) {
      const ref = `CarePlan/${plan.id}`;
      const blocked = openIssuesOf(ref).length > 0;
      // A plan from $apply stays draft until activated; its Tasks are approved all the same. Clear and holding care:
      // nothing of it is held (a hold outlived by its reason would keep a session from the patient).
      if (!blocked && (plan.status === 'active' || plan.status === 'draft')) {
        const held = orders.filter((o) => planOfOrder(o) === ref && o.status === 'on-hold');
        if (held.length && process.env.CLINIC_DAY_DEBUG) await dumpOrdersAtOdds(plan, held as MedicationRequest[]);
        expect({ plan: ref, status: plan.status, held: held.map((o) => o.id) }).toEqual({
          plan: ref,
          status: plan.status,
          held: [],
        });
        continue;
      }
      const toGive = orders.filter((o) => planOfOrder(o) === ref && o.status === 'active');
      // Seen once in ~100 days each (sessions 37, 38); session 41's dumps explained two: a session the pump gave under a
      // plan stopped meanwhile, charted after its infusion's follow-up (seed 1618, trust.e2e-spec.ts), and one given
      // during an infusion then taken back, left open by its follow-up (seed 1656, infusion-in-error.e2e-spec.ts).
      // CLINIC_DAY_DEBUG=1 keeps what explains another.
      if (toGive.length && process.env.CLINIC_DAY_DEBUG) await dumpOrdersAtOdds(plan, toGive as MedicationRequest[]);
      expect({ plan: ref, status: plan.status, blocked, toGive: toGive.map((o) => o.id) }).toEqual({
        plan: ref,
        status: plan.status,
        blocked,
        toGive: [],
      });
      for (const task of tasks.filter((t) => planOf(t) === ref && t.status === 'draft')) {
        const res: request.Response = await request(service.url)
          .post(`/tasks/${task.id}/$approve`)
          .set(clinician())
          .send({
            versionId: task.meta!.versionId,
            // A check the EHR moved outside its window is approved there only with a reason (session 45).
            outsideWindowReason: 'Approved at the end of the clinic day',
          });
        // A plan paused or ended refuses first (409), then an open issue (422). Its post-infusion checks outlive it
        // paused, stopped or completed (since session 52): held back only by an open issue.
        const expected = carePlanHoldsTask(plan, task).ok ? (blocked ? 422 : 200) : 409;
        // Why it was refused, shown when that was not expected.
        const why = res.status !== expected ? JSON.stringify(res.body) : undefined;
        expect({ task: task.id, action: actionOf(task), answered: res.status, why }).toEqual({
          task: task.id,
          action: actionOf(task),
          answered: expected,
          why: undefined,
        });
        // Approved: the lists below hold it as approved.
        if (res.status === 200) tasks[tasks.indexOf(task)] = res.body as Task;
      }
      // Stopped: nothing of it stays open but the post-infusion checks of its infusions given (since session 52; its
      // patient's death withdraws those too: see the deceased below). (Seen once, restart variant of seed 3389 in
      // session 51, not again in two reruns: a session held for a contraindication left open; whether the pump had
      // begun it, which leaves it to its infusion, the line says.)
      if (plan.status === 'revoked')
        expect(
          tasks
            .filter((t) => planOf(t) === ref && OPEN.includes(t.status) && !carePlanHoldsTask(plan, t).ok)
            .map(
              (t) =>
                `${t.id} ${t.status} ${actionOf(t)} ${t.statusReason?.text ?? ''} begun at the pump: ${begunAtThePump(t)}`,
            ),
        ).toEqual([]);
    }

    // A plan the EHR gave an end has no session left open, or an order to give, for a window beginning after it (but
    // one the pump has begun: left to its infusion).
    for (const plan of plans.filter((p) => p.period?.end)) {
      const ref = `CarePlan/${plan.id}`;
      const afterEnd = tasks.filter(
        (t) =>
          planOf(t) === ref &&
          OPEN.includes(t.status) &&
          t.focus?.reference?.startsWith('MedicationRequest/') &&
          dueAfterPlanEnd(plan, t.restriction?.period, service.config.clinicTimeZone) &&
          !begunAtThePump(t),
      );
      const toGive = orders.filter(
        (o) => o.status === 'active' && afterEnd.some((t) => sessionOfOrder(o)?.id === t.id),
      );
      expect({
        plan: ref,
        end: plan.period!.end,
        afterEnd: afterEnd.map((t) => `${t.id} ${t.status}`),
        toGive: toGive.map((o) => o.id),
      }).toEqual({
        plan: ref,
        end: plan.period!.end,
        afterEnd: [],
        toGive: [],
      });
    }

    // A plan of the service's whose end has passed, with nothing open under it, was completed by the sweep; one it
    // completed at its end is still over (its end not moved since) and has nothing open (since session 50).
    const nowMs = Date.now();
    for (const plan of plans.filter((p) => p.period?.end)) {
      const ref = `CarePlan/${plan.id}`;
      const ends = planEndsAt(plan, service.config.clinicTimeZone);
      const passed = ends !== undefined && ends <= nowMs;
      const stillOpen = [
        ...tasks.filter((t) => planOf(t) === ref && OPEN.includes(t.status)).map((t) => `Task/${t.id} ${t.status}`),
        ...orders
          .filter((o) => planOf(o) === ref && (o.status === 'active' || o.status === 'on-hold'))
          .map((o) => `${o.resourceType}/${o.id} ${o.status}`),
      ];
      if (plan.status === 'active' && passed)
        expect({
          plan: ref,
          end: plan.period!.end,
          completedWith: stillOpen.length ? stillOpen : 'nothing open',
        }).toEqual({
          plan: ref,
          end: plan.period!.end,
          completedWith: expect.arrayContaining([expect.any(String)]),
        });
      if (isCompletedAtItsEnd(plan))
        expect({ plan: ref, status: plan.status, passed, stillOpen }).toEqual({
          plan: ref,
          status: 'completed',
          passed: true,
          stillOpen: [],
        });
    }

    // Every decision a clinician was told was recorded has its one Provenance: the Task as target, the version
    // decided on as the revision. So has every override.
    const provenances = await service.fhir.searchAll<Provenance>('Provenance', { _count: 1000 });
    const recorded = (d: Decision) =>
      provenances.filter(
        (p) =>
          p.target.some((t) => t.reference === `Task/${d.taskId}`) &&
          p.entity?.some(
            (e) => e.role === 'revision' && e.what.reference === `Task/${d.taskId}/_history/${d.seenVersion}`,
          ),
      ).length;
    expect(decisions.filter((d) => recorded(d) !== 1)).toEqual([]);
    expect(
      overrides.filter((id) => !provenances.some((p) => p.target.some((t) => t.reference === `DetectedIssue/${id}`))),
    ).toEqual([]);

    // Each infusion planned again without is resolved, and what it closed was proposed again once each.
    for (const id of replanned) {
      const issue = issues.find((i) => i.id === id);
      if (!issue) continue; // deleted in the EHR since
      expect({ id, status: issue.status }).toEqual({ id, status: 'final' });
      const procedure = infusionInErrorOf(issue);
      const keys = tasks
        .flatMap((t) => t.identifier ?? [])
        .filter((i) => i.system === TASK_KEY_SYSTEM && i.value?.includes(`:in-error-${procedure}:`))
        .map((i) => i.value);
      expect({ id, keys }).toEqual({ id, keys: [...new Set(keys)] });
    }
    // Post-infusion checks that outlived their plan closed in the EHR (since session 52), open or recorded since.
    const checksOutliving = tasks.filter((t) => {
      const plan = plans.find((p) => `CarePlan/${p.id}` === planOf(t));
      return (
        plan &&
        !carePlanHoldsCare(plan).ok &&
        carePlanHoldsTask(plan, t).ok &&
        (OPEN.includes(t.status) || t.status === 'completed')
      );
    });
    if (process.env.CLINIC_DAY_DEBUG)
      console.log(
        `checks outliving a plan closed in the EHR: ${checksOutliving.length} (${checksOutliving.filter((t) => t.status === 'completed').length} recorded); infusions in error planned again: ${replanned.length}; sessions approved on the EHR's order: ${approvedOnEhrOrders}; given under an EHR's order: ${ehrOrdersGiven}; Tasks closed in the EHR: ${closedByEhr.size}; infusions charted naming no plan: ${unlinkedCharted.size}, linked by a clinician: ${linkedByClinician}; Tasks set to be done in the EHR: ${setToBeDone}; sessions begun there: ${begunInEhr}; windows moved in the EHR: ${windowsMoved}; reassigned there: ${reassigned}; patients recorded deceased: ${deceased.size}, deaths taken back: ${deathsTakenBack.size}; records merged: ${keptRecordOf.size}, twice: ${mergedTwice.size}; plan ends set: ${planEndsSet}, passed: ${planEndsPassed}, wrapped up: ${wrappedUp}, completed at their end: ${plans.filter(isCompletedAtItsEnd).length}, infusions charted under them after: ${chartedAfterCompletion.length}, sessions proposed again for a new end: ${tasks.filter((t) => t.statusReason?.text?.startsWith("Proposed again: its plan's end")).length}; infusions re-timed: ${retimed.size}; charted twice: ${chartedCopies.size}; approved outside their window: ${approvedOutsideWindow}; refused for another plan's session: ${refusedForOtherPlan}, approved beside it: ${approvedBesideOtherPlan}`,
      );

    // A session withdrawn for a plan's end is proposed again once for the new end (session 50): one Task per key.
    const afterEndKeys = tasks
      .flatMap((t) => t.identifier ?? [])
      .filter((i) => i.system === TASK_KEY_SYSTEM && i.value?.includes(':after-end-'))
      .map((i) => i.value);
    expect(afterEndKeys).toEqual([...new Set(afterEndKeys)]);

    // Each infusion is followed up once: one Task per protocol action, one check (what was proposed again in place of a
    // Task recorded in error, or of one withdrawn for a plan's end since moved, aside: it keeps the infusion it followed).
    const proposedAgain = (t: Task) =>
      t.identifier?.some(
        (i) => i.system === TASK_KEY_SYSTEM && (i.value?.includes(':in-error-') || i.value?.includes(':after-end-')),
      );
    for (const procedure of enrolled.flatMap((e) => e.infusions)) {
      const actions = tasks
        .filter((t) => t.status !== 'entered-in-error')
        .filter((t) => !proposedAgain(t))
        .filter((t) => t.reasonReference?.reference === `Procedure/${procedure}`)
        .map((t) => actionOf(t) ?? '?');
      expect({ procedure, actions }).toEqual({ procedure, actions: [...new Set(actions)] });
    }

    // An order to give answers an approved Task; an approved session has its one order, active or held.
    const orderKey = (o: { identifier?: { system?: string; value?: string }[] }) =>
      o.identifier?.find((i) => i.system === ORDER_KEY_SYSTEM)?.value;
    const byId = new Map(tasks.map((t) => [`Task/${t.id}`, t]));
    for (const order of orders.filter((o) => o.status === 'active')) {
      const task =
        byId.get(orderKey(order) ?? '') ??
        tasks.find((t) => ordersApprovedOn(t).includes(`MedicationRequest/${order.id}`));
      if (!task) continue; // an EHR's own order, approved on by no session
      expect({ order: order.id, task: task.id, approved: isApproved(task) }).toEqual({
        order: order.id,
        task: task.id,
        approved: true,
      });
    }
    // An order the pump gave is the infusion's: the service closes it after the pump recorded it only across that
    // record (FHIR has no lock spanning the two writes), and then undoes the closing, with its Provenance (never left
    // cancelled as moot or withdrawn). A clinician's rejection or dose change landing as the pump began is a clinician's
    // decision and stands; the pump giving an order already closed is the EHR's to answer (docs/task-states.md).
    const CLOSED = ['cancelled', 'stopped', 'entered-in-error'];
    const closedAfterGiven: string[] = [];
    for (const { order, recorded } of given.filter((g) => !ehrClosed.has(g.order))) {
      const current = orders.find((o) => o.id === order);
      if (!current || sessionOfOrder(current)?.status === 'rejected') continue;
      // A clinician's dose change that crossed the pump stands as a rejection does (the order given, replaced).
      if (current.statusReason?.text?.startsWith('Replaced by a new order')) continue;
      const history = (await (
        await fetch(`${service.config.fhirBaseUrl}/MedicationRequest/${order}/_history`)
      ).json()) as Bundle<MedicationRequest>;
      const crossed = (history.entry ?? []).some(
        (e) => CLOSED.includes(e.resource?.status ?? '') && e.resource!.meta!.lastUpdated! > recorded,
      );
      const undone = provenances.some(
        (p) =>
          p.activity?.text === 'undo a closing that crossed the pump' &&
          p.target.some((t) => t.reference === `MedicationRequest/${order}`),
      );
      if (crossed && (!undone || CLOSED.includes(current.status))) {
        closedAfterGiven.push(`${order} ${current.status}, undone: ${undone}`);
        if (process.env.CLINIC_DAY_DEBUG) {
          const get = async (url: string) => (await fetch(`${service.config.fhirBaseUrl}/${url}`)).json();
          const key = orderKey(current);
          fs.writeFileSync(
            `/tmp/kc-debug-given-${SEED}-${Date.now()}.json`,
            JSON.stringify({
              history,
              recorded,
              administrations: await get(`MedicationAdministration?request=MedicationRequest/${order}`),
              taskHistory: key ? await get(`${key}/_history`) : undefined,
              provenances: provenances.filter((p) =>
                p.target.some((t) => [`MedicationRequest/${order}`, key].includes(t.reference)),
              ),
              patientOrders: await get(`MedicationRequest?subject=${current.subject?.reference}&_count=200`),
            }),
          );
        }
      }
    }
    expect(closedAfterGiven).toEqual([]);

    // Orders and their replacements (priorPrescription) at any depth, among `within`.
    const descendantsOf = (roots: typeof orders, within: typeof orders) => {
      const found = [...roots];
      for (let more = true; more;) {
        const ids = new Set(found.map((o) => `MedicationRequest/${o.id}`));
        const next = within.filter(
          (o) => !found.includes(o) && ids.has((o as MedicationRequest).priorPrescription?.reference ?? ''),
        );
        found.push(...next);
        more = next.length > 0;
      }
      return found;
    };
    // A session's orders: those its approvals wrote (its key), the EHR's it was approved on, and the EHR's replacements
    // of them, at any depth.
    const ordersOfSession = (taskId: string) => {
      const approvedOn = ordersApprovedOn(byId.get(`Task/${taskId}`) ?? ({ resourceType: 'Task' } as Task));
      // An order it was approved on that the EHR deleted since is not read, but its replacements still name it (seed 2861);
      // so do those of one written for it (its key) that the EHR deleted (big seed 5282: a replacement left open).
      const onOrder = (ref: string | undefined) =>
        ref !== undefined && (approvedOn.includes(ref) || deletedOrderKeys.get(ref) === `Task/${taskId}`);
      return descendantsOf(
        orders.filter(
          (o) =>
            orderKey(o) === `Task/${taskId}` ||
            onOrder(`MedicationRequest/${o.id}`) ||
            onOrder((o as MedicationRequest).priorPrescription?.reference),
        ),
        orders,
      );
    };
    const toGiveOrHeld = (o: { status: string }) => o.status === 'active' || o.status === 'on-hold';
    // A session's orders to give (or held). An order the EHR replaced but left open beside its replacement is the
    // EHR's to close: the two count as one (what the service does to one it does to both, which the plans' checks
    // above hold it to), also when the EHR replaced its replacement again since (session 39: the open one names a
    // cancelled replacement).
    // The EHR's replacements left open are its own to close too: several of them (the dose changed twice from one
    // order it left open: two branches, clinic day seed 3094) count as one.
    const ordersToGive = (chain: typeof orders) => {
      const toGive = chain.filter(
        (o) =>
          toGiveOrHeld(o) &&
          !chain.some(
            (r) =>
              leftOpen.has(r.id!) &&
              (r as MedicationRequest).priorPrescription?.reference === `MedicationRequest/${o.id}` &&
              descendantsOf([r], chain).some(toGiveOrHeld),
          ),
      );
      const ehrLeftOpen = toGive.filter((o) => leftOpen.has(o.id!));
      // So is the EHR's later replacement of an order it had replaced and left open (the dose changed again from the
      // order it still showed active, that order cancelled this time: seed 5902): a sibling of its open branch. Not
      // one written here (a `$change-dose` closes the EHR's branches: session 56).
      const branchedFrom = new Set(
        ehrLeftOpen.flatMap((o) => (o as MedicationRequest).priorPrescription?.reference ?? []),
      );
      const oneOfTheBranches = (o: (typeof chain)[number]) =>
        leftOpen.has(o.id!) ||
        (!o.identifier?.some((i) => i.system === ORDER_KEY_SYSTEM) &&
          branchedFrom.has((o as MedicationRequest).priorPrescription?.reference ?? ''));
      return [...toGive.filter((o) => !oneOfTheBranches(o)), ...ehrLeftOpen.slice(0, 1)];
    };
    // Never two orders to give for one Task (a rejection, a hold or a withdrawal reaches one of them).
    const twice = tasks.map((t) => ({
      task: t.id,
      open: ordersToGive(ordersOfSession(t.id!)).map((o) => o.id),
    }));
    if (process.env.CLINIC_DAY_DEBUG)
      for (const { task, open } of twice.filter((t) => t.open.length > 1)) {
        const get = async (url: string) => (await fetch(`${service.config.fhirBaseUrl}/${url}`)).json();
        const chain = ordersOfSession(task!).map((o) => o.id!);
        fs.writeFileSync(
          `/tmp/kc-debug-twice-${SEED}-${task}.json`,
          JSON.stringify({
            open,
            task: await get(`Task/${task}/_history`),
            orders: await Promise.all(chain.map((id) => get(`MedicationRequest/${id}/_history`))),
            provenances: provenances.filter((p) =>
              p.target.some((t) =>
                [`Task/${task}`, ...chain.map((id) => `MedicationRequest/${id}`)].includes(t.reference!),
              ),
            ),
          }),
        );
      }
    // What explains it, in the failure itself (CI keeps no dump): CI's seed 20261204 failed here once (session 56), as
    // seed 2646 had (session 46), neither reproduced since; the ids fitted the EHR's replacement written while a dose
    // change was being made (test/crossed-ehr-replacements.e2e-spec.ts).
    const explained = twice
      .filter((t) => t.open.length > 1)
      .map(({ task, open }) => {
        const t = byId.get(`Task/${task}`)!;
        const chain = ordersOfSession(task!);
        const refs = new Set([`Task/${task}`, ...chain.map((o) => `MedicationRequest/${o.id}`)]);
        return {
          task,
          open,
          status: `${t.status} ${t.businessStatus?.text ?? ''} v${t.meta?.versionId} ${t.meta?.lastUpdated}`,
          basedOn: t.basedOn?.map((b) => b.reference),
          decisions: decisions.filter((d) => d.taskId === task).map((d) => `${d.decision} on v${d.seenVersion}`),
          orders: chain.map((o) => {
            const r = o as MedicationRequest;
            return [
              `${r.id} ${r.status} v${r.meta?.versionId} ${r.meta?.lastUpdated}`,
              `key ${orderKey(r) ?? '-'} prior ${r.priorPrescription?.reference ?? '-'}`,
              `${leftOpen.has(r.id!) ? 'leftOpen ' : ''}${ehrClosed.has(r.id!) ? 'ehrClosed ' : ''}${given.some((g) => g.order === r.id) ? 'given ' : ''}`,
              r.statusReason?.text ?? '',
            ].join(' | ');
          }),
          provenances: provenances
            .filter((p) => p.target.some((x) => refs.has(x.reference!.replace(/\/_history\/.*$/, ''))))
            .map(
              (p) =>
                `${p.recorded} ${p.activity?.text ?? p.activity?.coding?.[0]?.code} ${p.agent?.[0]?.who?.reference ?? p.agent?.[0]?.who?.display}`,
            ),
        };
      });
    expect(explained).toEqual([]);
    // A session a clinician rejected, or the service withdrew, has no order left to give, the EHR's replacements of its
    // order included (one written while the rejection or withdrawal was being made is closed with it, since session 56);
    // but one the pump gave (the infusion's).
    const rejectedWithOrders = tasks
      .filter(
        (t) =>
          (t.status === 'rejected' && decisions.some((d) => d.taskId === t.id && d.decision === 'reject')) ||
          stateOf(t) === 'withdrawn',
      )
      .map((t) => ({ task: t.id, chain: ordersOfSession(t.id!) }))
      .filter(({ chain }) => !chain.some((o) => given.some((g) => g.order === o.id)))
      .map(({ task, chain }) => ({ task, open: chain.filter(toGiveOrHeld).map((o) => `${o.id} ${o.status}`) }))
      .filter(({ open }) => open.length > 0);
    expect(rejectedWithOrders).toEqual([]);
    for (const task of tasks.filter((t) => isApproved(t) || t.status === 'on-hold')) {
      const plans = task.basedOn?.filter((b) => b.reference?.startsWith('CarePlan/')) ?? [];
      if (!task.focus?.reference?.startsWith('MedicationRequest/') || plans.length !== 1) continue;
      const chain = ordersOfSession(task.id!);
      // A session the pump began is the infusion's: the EHR closing its order leaves it approved (docs/task-states.md).
      if (chain.some((o) => given.some((g) => g.order === o.id))) continue;
      if (ordersToGive(chain).length !== 1 && process.env.CLINIC_DAY_DEBUG) {
        const get = async (url: string) => (await fetch(`${service.config.fhirBaseUrl}/${url}`)).json();
        fs.writeFileSync(
          `/tmp/kc-debug-approved-${SEED}-${task.id}.json`,
          JSON.stringify({
            taskHistory: await get(`Task/${task.id}/_history`),
            chain: await Promise.all(chain.map((o) => get(`${o.resourceType}/${o.id}/_history`))),
            patientOrders: await get(`MedicationRequest?subject=${task.for?.reference}&_count=200`),
            provenances: provenances.filter((p) =>
              p.target.some((t) =>
                [`Task/${task.id}`, ...chain.map((o) => `${o.resourceType}/${o.id}`)].includes(t.reference!),
              ),
            ),
            plan: await get(
              `${plans[0] ? task.basedOn?.find((b) => b.reference?.startsWith('CarePlan/'))?.reference : ''}/_history`,
            ),
          }),
        );
      }
      expect({ task: task.id, orders: ordersToGive(chain).length }).toEqual({ task: task.id, orders: 1 });
    }

    // An infusion charted twice is followed up once: a copy of one followed up (both still completed, at overlapping
    // times) planned nothing.
    const followedUpBy = (id: string) => tasks.filter((t) => t.reasonReference?.reference === `Procedure/${id}`);
    const copiesFollowedUp: string[] = [];
    for (const [copyId, originalId] of chartedCopies) {
      const [copy, original] = await Promise.all(
        [copyId, originalId].map((id) => service.fhir.readIfExists<Procedure>('Procedure', id)),
      );
      if (copy?.status !== 'completed' || original?.status !== 'completed') continue;
      if (!windowsOverlap(performedOf(copy), performedOf(original))) continue;
      if (followedUpBy(originalId).length && followedUpBy(copyId).length) copiesFollowedUp.push(copyId);
    }
    expect(copiesFollowedUp).toEqual([]);

    // An infusion charted naming no plan whose session's pump record was charted (before it, or documented late since:
    // the sweep ties it then, since session 48), or whose session the EHR closed naming it (Task.output), is linked to its plan (and so followed up), unless taken back since or
    // a clinician recorded it was not a session of the plan (an override of its issue, which stands).
    const unlinkedLeft: string[] = [];
    for (const [id, record] of unlinkedCharted) {
      const procedure = await service.fhir.readIfExists<Procedure>('Procedure', id);
      if ((!chartedRecords.has(record) && !completedNaming.has(id)) || procedure?.status !== 'completed') continue;
      const [notLinked] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
        identifier: notLinkedKey(id),
      });
      if (notLinked && overrides.includes(notLinked.id!)) continue;
      // The pump gave sessions of two of the patient's plans during it (two plans at once, their windows moved in the
      // EHR onto one day): the evidence ties it to both, so to neither, and a clinician links it (by design).
      const during = (
        await service.fhir.searchAll<MedicationAdministration>('MedicationAdministration', {
          patient: procedure.subject.reference!,
          _count: 200,
        })
      ).filter((a) => a.effectivePeriod && windowsOverlap(a.effectivePeriod, performedOf(procedure)));
      const plansGiven = new Set(
        during.flatMap((a) => {
          const order = orders.find((o) => `MedicationRequest/${o.id}` === a.request?.reference);
          return order ? [planOfOrder(order)] : [];
        }),
      );
      if (plansGiven.size > 1) continue;
      // The EHR's order the pump gave under, whose session the EHR deleted since: what tied the infusion to the plan is
      // gone when a job late by an outage reads it, and a clinician links it (by design; outage variant, seed 3692).
      if (during.some((a) => deletedTasks.some((t) => ordersApprovedOn(t).includes(a.request?.reference ?? ''))))
        continue;
      // Linked to the service's plan (an EHR's episode it names is not one).
      if (!procedure.basedOn?.some((b) => enrolled.some((e) => b.reference === `CarePlan/${e.carePlanId}`)))
        unlinkedLeft.push(id);
    }
    if (unlinkedLeft.length && process.env.CLINIC_DAY_DEBUG) {
      const get = async (url: string) => (await fetch(`${service.config.fhirBaseUrl}/${url}`)).json();
      for (const id of unlinkedLeft) {
        const procedure = await service.fhir.read<Procedure>('Procedure', id);
        const patient = procedure.subject.reference!;
        fs.writeFileSync(
          `/tmp/kc-debug-unlinked-${SEED}-${id}.json`,
          JSON.stringify({
            procedure,
            administrations: await get(`MedicationAdministration?patient=${patient}&_count=200`),
            orders: await get(`MedicationRequest?subject=${patient}&_count=200`),
            tasks: await get(`Task?patient=${patient}&_count=200`),
            plans: await get(`CarePlan?subject=${patient}`),
            job: (await service.app.get<Queue>(getQueueToken(QUEUES.followups)).getJob(infusionJobId(id)))?.returnvalue,
            // What ties it, as the day charted it: its session's pump record (charted when), a session closed naming
            // it; and its not-linked issue, with its history.
            record: unlinkedCharted.get(id),
            recordCharted: chartedRecords.has(unlinkedCharted.get(id)!),
            completedNaming: completedNaming.has(id),
            issue: await get(`DetectedIssue?identifier=${encodeURIComponent(notLinkedKey(id))}`),
            procedureHistory: await get(`Procedure/${id}/_history`),
            provenances: await get(`Provenance?target=Procedure/${id}`),
          }),
        );
      }
    }
    // What explains it, in the failure itself (CI keeps no dump): CI's seed 20261204 failed here once (session 58), not
    // reproduced in some 30 reruns; the ids alone did not tell why.
    const unlinkedExplained = await Promise.all(
      unlinkedLeft.map(async (id) => {
        const procedure = await service.fhir.read<Procedure>('Procedure', id);
        const record = unlinkedCharted.get(id)!;
        const orderRef = record.request?.reference ?? '';
        const order = orderRef
          ? (await service.fhir.readEvenIfDeleted<MedicationRequest>('MedicationRequest', orderRef.split('/')[1]))
              ?.resource
          : undefined;
        const [issue] = await service.fhir.searchAll<DetectedIssue>('DetectedIssue', {
          identifier: notLinkedKey(id),
        });
        const job = await service.app.get<Queue>(getQueueToken(QUEUES.followups)).getJob(infusionJobId(id));
        const tasksOnIt = order
          ? await service.fhir.searchAll<Task>('Task', { 'based-on': `MedicationRequest/${order.id}` })
          : [];
        return {
          id,
          procedure: `${procedure.status} v${procedure.meta?.versionId} ${procedure.meta?.lastUpdated} basedOn ${procedure.basedOn?.map((b) => b.reference).join(',') ?? '-'} performed ${JSON.stringify(procedure.performedPeriod ?? procedure.performedDateTime)}`,
          record: `${record.status} ${orderRef} ${JSON.stringify(record.effectivePeriod)} charted ${chartedRecords.has(record)} completedNaming ${completedNaming.has(id)}`,
          // The pump's records on the server during it, and what they name.
          during: (
            await service.fhir.searchAll<MedicationAdministration>('MedicationAdministration', {
              patient: procedure.subject.reference!,
              _count: 200,
            })
          )
            .filter((a) => a.effectivePeriod && windowsOverlap(a.effectivePeriod, performedOf(procedure)))
            .map((a) => `${a.id} ${a.status} ${a.request?.reference} ${a.meta?.lastUpdated}`),
          order: order
            ? `${order.status} v${order.meta?.versionId} ${order.meta?.lastUpdated} key ${orderKey(order) ?? '-'} prior ${order.priorPrescription?.reference ?? '-'} basedOn ${order.basedOn?.map((b) => b.reference).join(',') ?? '-'} reason ${order.statusReason?.text ?? '-'}`
            : 'none',
          tasksApprovedOnIt: tasksOnIt.map((t) => `${t.id} ${t.status} ${stateOf(t)}`),
          issue: issue
            ? `${issue.status} ${issue.meta?.lastUpdated} ${issue.mitigation?.length ?? 0} mitigations`
            : 'none',
          job: job
            ? `${await job.getState()} ${JSON.stringify(job.returnvalue ?? job.failedReason)?.slice(0, 300)}`
            : 'none',
          provenances: provenances
            .filter((p) => p.target.some((x) => x.reference?.startsWith(`Procedure/${id}`)))
            .map((p) => `${p.recorded} ${p.activity?.text ?? p.activity?.coding?.[0]?.code}`),
        };
      }),
    );
    expect(unlinkedExplained).toEqual([]);

    // A Task the EHR set to be done while it awaited approval was returned for approval (or approved here since).
    expect(tasks.filter(approvedOutside).map((t) => `${t.id} ${t.status}`)).toEqual([]);

    // A Task the EHR closed stays as it closed it: the service does not reopen it, supersede it or mark it in error.
    // One whose session the pump gave (the EHR's closing crossed the pump) may read completed: the drug went in.
    const changed = [...closedByEhr].flatMap(([id, status]) => {
      const now = byId.get(`Task/${id}`);
      const givenAtPump = ordersOfSession(id).some((o) => given.some((g) => g.order === o.id));
      if (now?.status === 'completed' && givenAtPump) return [];
      return now && now.status !== status ? [`${id} ${status} -> ${now.status}`] : [];
    });
    if (changed.length && process.env.CLINIC_DAY_DEBUG)
      for (const line of changed) {
        const id = line.split(' ')[0];
        const get = async (url: string) => (await fetch(`${service.config.fhirBaseUrl}/${url}`)).json();
        fs.writeFileSync(
          `/tmp/kc-debug-closed-${SEED}-${id}.json`,
          JSON.stringify({
            history: await get(`Task/${id}/_history`),
            provenances: provenances.filter((p) => p.target.some((t) => t.reference === `Task/${id}`)),
          }),
        );
      }
    expect(changed).toEqual([]);

    // A window the EHR moved is followed: the window as set is the one the Task has, an approved session's reminders
    // still to send are timed from it (never from a window it no longer has), and nothing due again reads overdue.
    expect(tasks.filter(windowMovedOutside).map((t) => t.id)).toEqual([]);
    const settledAt = new Date();
    const reminders = await service.fhir.searchAll<CommunicationRequest>('CommunicationRequest', {
      status: 'active',
      _count: 1000,
    });
    const mistimed: string[] = [];
    for (const task of tasks.filter((t) => hasReminders(t) && isOpen(t))) {
      const plan = plans.find((p) => `CarePlan/${p.id}` === planOf(task));
      const protocol = plan && (await service.app.get(PlanDefinitions).ofCarePlan(plan));
      const planned = plannedReminders(
        { ...task, id: task.id! },
        reminderRulesForTask(task, protocol),
        settledAt,
        service.config.clinicTimeZone,
      ).map((r) => r.request.occurrenceDateTime);
      for (const r of reminders.filter((r) => isReminderAbout(r, task.id)))
        if (!planned.includes(r.occurrenceDateTime))
          mistimed.push(
            `${task.id} ${JSON.stringify(task.restriction?.period)}: ${r.id} at ${r.occurrenceDateTime} (planned: ${planned.join(', ') || 'none'}; protocol ${protocol ? 'read' : 'not read'})`,
          );
    }
    // CLINIC_DAY_DEBUG=1 keeps what explains one: the Task's history, its reminders' histories, its Provenances.
    if (mistimed.length && process.env.CLINIC_DAY_DEBUG)
      for (const id of new Set(mistimed.map((line) => line.split(' ')[0]))) {
        const get = async (url: string) => (await fetch(`${service.config.fhirBaseUrl}/${url}`)).json();
        const about = reminders.filter((r) => isReminderAbout(r, id));
        fs.writeFileSync(
          `/tmp/kc-debug-mistimed-${SEED}-${id}.json`,
          JSON.stringify({
            task: await get(`Task/${id}/_history`),
            reminders: await Promise.all(about.map((r) => get(`CommunicationRequest/${r.id}/_history`))),
            provenances: provenances.filter((p) => p.target.some((t) => t.reference === `Task/${id}`)),
          }),
        );
      }
    expect(mistimed).toEqual([]);
    expect(
      tasks.filter((t) => stateOf(t) === 'overdue' && !hasEnded(t, settledAt)).map((t) => `${t.id} ${t.status}`),
    ).toEqual([]);

    // Every open post-infusion check is counted from its infusion as the EHR has it now (re-timed or not): its protocol
    // window begins when the infusion ended.
    const infusionsNow = await service.fhir.searchAll<Procedure>('Procedure', { status: 'completed', _count: 1000 });
    const checksMistimed = tasks
      .filter((t) => isOpen(t) && !isClosedByStatus(t) && actionOf(t) === 'post-infusion-check')
      .flatMap((t) => {
        const infusion = infusionsNow.find((p) => `Procedure/${p.id}` === t.reasonReference?.reference);
        const from = protocolWindowOf(t)?.start;
        if (!infusion || !from || Date.parse(from) === Date.parse(infusion.performedPeriod?.end ?? '')) return [];
        return [`${t.id} from ${from}, ${infusion.id} ended ${infusion.performedPeriod?.end}`];
      });
    if (checksMistimed.length && process.env.CLINIC_DAY_DEBUG)
      for (const line of checksMistimed) {
        const [task, , , infusion] = line.split(' ');
        const get = async (url: string) => (await fetch(`${service.config.fhirBaseUrl}/${url}`)).json();
        fs.writeFileSync(
          `/tmp/kc-debug-retimed-${SEED}-${task}.json`,
          JSON.stringify({
            task: await get(`Task/${task}/_history`),
            infusion: await get(`Procedure/${infusion.replace(/,$/, '')}/_history`),
            provenances: provenances.filter((p) => p.target.some((t) => t.reference === `Task/${task}`)),
          }),
        );
      }
    expect(checksMistimed).toEqual([]);

    // Every infusion charted under a plan the EHR stopped or completed has its post-infusion check (since session 52;
    // deleted in the EHR since, maybe). An infusion followed up before its
    // plan closed had it then; one of a patient recorded as deceased then has none.
    const followedUp = new Set([...tasks, ...deletedTasks].map((t) => t.reasonReference?.reference));
    // How long each closed plan's infusion lasts: records closer than that are one infusion (since session 53).
    const infusionLength = new Map<CarePlan, number>();
    for (const plan of new Set(infusionsNow.map((p) => protocolPlanOf(p, plans)))) {
      const protocol = plan && takesChecksOnly(plan) && (await service.app.get(PlanDefinitions).ofCarePlan(plan));
      if (protocol) infusionLength.set(plan, infusionDefinitionFor(protocol.plan, protocol.definitions).lengthMs);
    }
    const uncheckedUnderClosedPlans = infusionsNow.flatMap((p) => {
      const plan = protocolPlanOf(p, plans);
      if (!plan || !takesChecksOnly(plan)) return [];
      // An infusion charted twice (overlapping times on its plan, or closer than one infusion lasts: the clinic day's
      // copies, or one charted naming no plan and linked beside another) is followed up once.
      const lengthMs = infusionLength.get(plan) ?? 0;
      const copies = infusionsNow.filter((q) => {
        const [a, b] = [performedOf(q), performedOf(p)];
        return protocolPlanOf(q, plans) === plan && a && b && sameInfusion(a, b, { lengthMs });
      });
      if (copies.some((q) => followedUp.has(`Procedure/${q.id}`))) return [];
      // Recorded as deceased at some time (taken back since, maybe): its follow-up may have run then.
      const patient = p.subject?.reference ?? '';
      if (deceased.has(patient) || deathsTakenBack.has(patient)) return [];
      return [`${p.id} under ${plan.id} ${plan.status}`];
    });
    // CLINIC_DAY_DEBUG=1 keeps what explains one: the infusion's and its plan's histories, the plan's Tasks, its job.
    if (uncheckedUnderClosedPlans.length && process.env.CLINIC_DAY_DEBUG)
      for (const line of uncheckedUnderClosedPlans) {
        const [procedure, , plan] = line.split(' ');
        const get = async (url: string) => (await fetch(`${service.config.fhirBaseUrl}/${url}`)).json();
        const job = await service.app.get<Queue>(getQueueToken(QUEUES.followups)).getJob(infusionJobId(procedure));
        fs.writeFileSync(
          `/tmp/kc-debug-unchecked-${SEED}-${procedure}.json`,
          JSON.stringify({
            infusion: await get(`Procedure/${procedure}/_history`),
            plan: await get(`CarePlan/${plan}/_history`),
            tasks: tasks.filter((t) => planOf(t) === `CarePlan/${plan}`),
            job: job && { returnvalue: job.returnvalue, failedReason: job.failedReason, attempts: job.attemptsMade },
          }),
        );
      }
    expect(uncheckedUnderClosedPlans).toEqual([]);

    // A patient recorded as deceased has no plan holding care, nothing open, no order of the service's to give and no
    // reminder to come.
    for (const patient of deceased) {
      const theirs = (r: { subject?: { reference?: string }; for?: { reference?: string } }) =>
        (r.subject ?? r.for)?.reference === patient;
      if (process.env.CLINIC_DAY_DEBUG && reminders.some(theirs)) {
        const get = async (url: string) => (await fetch(`${service.config.fhirBaseUrl}/${url}`)).json();
        const left = reminders.filter(theirs);
        fs.writeFileSync(
          `/tmp/kc-debug-deceased-${SEED}-${Date.now()}.json`,
          JSON.stringify({
            reminders: await Promise.all(left.map((r) => get(`CommunicationRequest/${r.id}/_history`))),
            tasks: await Promise.all(left.map((r) => get(`${r.about?.[0]?.reference}/_history`))),
            plans: await get(`CarePlan?subject=${patient}`),
            planHistories: await Promise.all(plans.filter(theirs).map((p) => get(`CarePlan/${p.id}/_history`))),
            patient: await get(`${patient}/_history`),
            provenances: provenances.filter((p) =>
              p.target.some((t) =>
                left.some((r) => [`CommunicationRequest/${r.id}`, r.about?.[0]?.reference].includes(t.reference)),
              ),
            ),
          }),
        );
      }
      expect({
        patient,
        plans: plans.filter((p) => theirs(p) && ['active', 'draft', 'on-hold'].includes(p.status)).map((p) => p.id),
        open: tasks.filter((t) => theirs(t) && OPEN.includes(t.status)).map((t) => t.id),
        // The service's (its sessions', and the EHR's it approved on or that replace those); the EHR's own are its own.
        orders: orders.filter((o) => theirs(o) && planOfOrder(o) && toGiveOrHeld(o)).map((o) => o.id),
        reminders: reminders.filter((r) => theirs(r)).map((r) => r.id),
      }).toEqual({ patient, plans: [], open: [], orders: [], reminders: [] });
    }

    // A death taken back (and not recorded again): the plans it ended stay ended, each noted so by the sweep.
    for (const patient of [...deathsTakenBack].filter((p) => !deceased.has(p))) {
      const tagged = (code: string) =>
        plans
          .filter((p) => p.subject?.reference === patient && p.meta?.tag?.some((t) => t.code === code))
          .map((p) => [p.id, p.status]);
      expect({ patient, untold: tagged('ended-for-death') }).toEqual({ patient, untold: [] });
      expect(tagged('death-record-corrected').filter(([, status]) => status !== 'revoked')).toEqual([]);
    }

    // The lists show exactly what the store holds: awaiting approval (or held) on the worklist, approved on the
    // to-do list, each when it is due and whose it is as the Task says (a window or an owner the EHR changed too).
    const asListed = (t: Task) => listed(t.id!, t.restriction?.period, t.owner?.reference);
    const onWorklist = tasks.filter((t) => t.status === 'draft' || (t.status === 'on-hold' && t.statusReason));
    expect(await allPages('/worklist')).toEqual(onWorklist.map(asListed).sort());
    expect(await allPages('/to-do')).toEqual(
      tasks
        .filter((t) => isApproved(t))
        .map(asListed)
        .sort(),
    );

    // The clinic is told once of each alert, never twice (a job and the sweep looking at once each claim it), and is
    // told of every issue that waits for a clinician with approved orders held or an effect reported, and of every
    // approved order still to give that a late pump record put at odds with its protocol.
    // The keys of every message to the clinic on record (each alert and notice, per channel).
    const alertKeysOnRecord = async () =>
      (await service.fhir.searchAll<Communication>('Communication', { _count: 1000 })).flatMap(
        (c) => c.identifier?.flatMap((i) => (i.system === CLINIC_ALERT_KEY_SYSTEM && i.value ? [i.value] : [])) ?? [],
      );
    const told = await alertKeysOnRecord();
    expect(told.filter((key, i) => told.indexOf(key) !== i)).toEqual([]);
    const untold = issues
      .filter(needsClinicAlert)
      .map((i) => clinicAlertKey(i, 'inbox'))
      .filter((key) => !told.includes(key));
    const ratesUntold = orders
      .filter((o): o is MedicationRequest => o.resourceType === 'MedicationRequest' && toGiveOrHeld(o))
      .filter((o) => orderKey(o) && !given.some((g) => g.order === o.id))
      .flatMap((order) => {
        const rates = standingNoticeRates(order);
        return rates ? [rateNoticeAlertKey({ order, ...rates }, 'inbox')] : [];
      })
      .filter((key) => !told.includes(key));
    expect({ untold, ratesUntold }).toEqual({ untold: [], ratesUntold: [] });
    // Told of an infusion under a plan the EHR closed only when nothing was planned for it (session 51): never of one
    // followed up before its plan closed.
    const underClosed = told.filter((k) => k.startsWith('inbox:infusion-under-closed-plan:'));
    expect(
      underClosed
        .map((k) => k.slice('inbox:infusion-under-closed-plan:'.length))
        .filter((procedure) => tasks.some((t) => t.reasonReference?.reference === procedure)),
    ).toEqual([]);
    // Follow-up work told as failing (the outage's dead letters, session 61) has its notice once its job has run: the
    // jobs' standing read first, then one more look, so a job that ran before the look must have its notice.
    const failingTold = told.filter((k) => FAILING_WORK.some((kind) => k.startsWith(`inbox:${kind.kind}:`)));
    // Run: completed (or, for work whose completed jobs are not kept, gone).
    const ranBefore = await Promise.all(
      failingTold.map(async (key) => {
        const kind = FAILING_WORK.find((k) => key.startsWith(`inbox:${k.kind}:`))!;
        const about = key.slice(`inbox:${kind.kind}:`.length);
        const { state } = await service.app.get(DeadLetters).standing(kind.queue, kind.jobIdOf(about));
        return state === 'ran' || (state === 'gone' && !kind.completedJobsKept);
      }),
    );
    await service.app.get(FailingWorkAlerts).look();
    const afterLook = await alertKeysOnRecord();
    expect(
      failingTold.filter((key, i) => ranBefore[i] && !afterLook.includes(key.replace('inbox:', 'inbox:resolved:'))),
    ).toEqual([]);
    if (process.env.CLINIC_DAY_DEBUG)
      console.log(`follow-up work told as failing: ${failingTold.length} (${failingTold.join(', ')})`);
    if (process.env.CLINIC_DAY_DEBUG)
      console.log(
        `clinic alerts told: ${told.length} (rate notices: ${told.filter((k) => k.includes('rate-since')).length}; infusions under a closed plan: ${underClosed.length})`,
      );

    expect(await expectEverythingValid(service)).toBeGreaterThan(0);
  }, 300_000);
});
