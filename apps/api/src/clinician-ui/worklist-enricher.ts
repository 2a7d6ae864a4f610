import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@kc/config';
import type {
  Bundle,
  CarePlan,
  DetectedIssue,
  MedicationRequest,
  Observation,
  Patient,
  PlanDefinition,
  Questionnaire,
  Task,
} from '@medplum/fhirtypes';
import { FhirClient, includedOf, matchesOf, readAndSearchEach, type NamedSearch } from '@kc/fhir';
import { doseReadingFor, doseView, type DoseView } from './dose-view';
import {
  ordersByTask,
  tasksToFollowSince,
  TO_DO_ORDERS,
  TO_DO_ORDERS_APPROVED_ON,
  toDoOrderOf,
  toDoOrdersSearches,
  type ToDoOrder,
} from './to-do-orders';
import {
  carePlanHoldsCare,
  carePlanHoldsTask,
  dueOutsideProtocolWindow,
  ehrOrdersForSession,
  ehrOrdersNotice,
  noticeIfDecidedNow,
  outcomeScores,
  reminderRulesFor,
  scoreCodes,
} from '@kc/followups';
import { orderEvenIfDeleted, ordersReplacedBy, PlanDefinitions } from '@kc/nest-core';
import {
  PROTOCOL_WINDOW_EXTENSION,
  ProtocolCatalog,
  extractedChoices,
  linkedPatientRecords,
  orderRateText,
  questionnaireCanonicalOf,
  replacedBy,
  type ResolvedPlan,
} from '@kc/protocols';
import { ordersOfOtherSessions, replacementOrdersParams, replacementsOfOtherSessions } from '@kc/task-states';
import type { WorklistEntry } from '@kc/worklist-index';
import {
  issueView,
  latestEffects,
  latestScores,
  summaryOf,
  type ContraindicationView,
  type EffectsView,
  type PatientSummary,
  type ScoreView,
} from './record-views';

/** The worklist item as GET /worklist answers it (the index's entry is the API's contract): only what is read here. */
export type WorklistItemLike = Pick<
  WorklistEntry,
  | 'id'
  | 'patient'
  | 'carePlan'
  | 'protocol'
  | 'kind'
  | 'action'
  | 'phase'
  | 'description'
  | 'due'
  | 'allowedWindow'
  | 'onHold'
  | 'request'
  | 'infusion'
  | 'approvedOn'
>;

export interface ItemView {
  patient?: PatientSummary;
  protocol?: { id?: string; title?: string; phase?: 'induction' | 'maintenance' };
  /** `answers`: the Questionnaire the Task is done by answering (the post-infusion check), by title: the page offers to record it. */
  task: { label: string; answers?: string };
  contraindications: ContraindicationView[];
  scores: ScoreView[];
  /** What the patient reported after their last infusion, for the clinician approving the next one. */
  effects?: EffectsView;
  /**
   * Why the Task cannot be approved whatever its contraindications: its plan was stopped or paused (an EHR did), or
   * (awaiting approval) its protocol is nowhere to be read, so the patient cannot be checked again.
   */
  blocked?: string;
  /**
   * A post-infusion check whose plan no longer holds care (stopped, completed, paused in the EHR), which it outlives:
   * why it is still to be done (since session 52).
   */
  planClosed?: string;
  /** A reminder approving it now would send with less notice than it needs (the fasting one, near the window). */
  reminderNotice?: string;
  /** Due outside its protocol window (moved so in the EHR: nothing here sets one), with the window the protocol allows. */
  windowNotice?: string;
  /**
   * Awaiting approval, an infusion whose drug the EHR has an open order of (written outside this service): for its
   * time (approving asks whether it is this session's) or with no time set (worth a look first). In words.
   */
  ehrOrders?: string;
  /**
   * An infusion titrated per kg: awaiting approval, the rate it would be ordered at; approved (the to-do list), the rate
   * and bolus its order gives; with its range and the weight now.
   */
  dose?: DoseView;
  /** An approved Task's order, on the to-do list: its rate as prescribed and as given, e.g. "0.75 mg/kg/h (52.5 mg/h)". */
  orderedDose?: string;
  /**
   * On the to-do list, when its order is not simply the one approved here, active: replaced in the EHR, on hold by
   * someone else, or closed ("No order to give: its order was cancelled (...)").
   */
  orderStatus?: string;
}

/** What the enricher read for a page: each patient's summary and latest scores, each plan's contraindications. */
export interface PageRecords {
  summaries: Map<string, PatientSummary>;
  /** The patients the FHIR server does not have (or whose reference is not `Patient/<id>`). */
  missing: Set<string>;
  scores: Map<string, ScoreView[]>;
  effects: Map<string, EffectsView>;
  issues: Map<string, ContraindicationView[]>;
  /** The plans that hold no care now (stopped, paused): their Tasks but post-infusion checks are blocked. */
  plansNotHolding: Map<string, CarePlan>;
  /** The proposals asked for (`MedicationRequest/<id>`), as read. */
  proposals: Map<string, MedicationRequest | undefined>;
  /** The dose searches asked for (weights, orders), by name. */
  doseSearches: Record<string, Bundle>;
}

/** The protocols a page's items follow, by the canonical each names. */
type Protocols = Map<string, ResolvedPlan>;

/** Besides patients and plans, what a page needs for its doses: proposals to read, weights or orders to search. */
export interface DoseReads {
  proposals: string[];
  searches: NamedSearch[];
}

/**
 * Decorates worklist items with what a clinician needs to decide (patient name and age, protocol title and phase,
 * contraindications, latest scores), reading each patient and plan once per call. Separate from WorklistService:
 * how the worklist is queried and paged is not its business.
 */
@Injectable()
export class WorklistEnricher {
  /** The catalog's protocols, whose outcome-driven timing names the scores they judge response by. */
  private readonly catalogPlans: PlanDefinition[];
  /** The catalog's Questionnaires, whose extracted choices are the effects a check reports. */
  private readonly catalogQuestionnaires: Questionnaire[];
  /** What a clinician calls each kind of Task (the protocols' CodeSystem). */
  private readonly kindLabels: Map<string, string>;
  /** The kinds of Task done by answering a Questionnaire (the check). */
  private readonly checkKinds: Set<string>;

  constructor(
    private readonly fhir: FhirClient,
    private readonly catalog: ProtocolCatalog,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'clinicTimeZone'>,
    private readonly protocols: PlanDefinitions,
  ) {
    this.catalogPlans = catalog.planDefinitions();
    this.catalogQuestionnaires = catalog.questionnaires();
    this.kindLabels = new Map(catalog.taskKinds().map((k) => [k.code, k.display]));
    this.checkKinds = new Set(catalog.questionnaireTaskKinds());
  }

  /**
   * `for: 'to-do'`: the items were approved already, so no notice of what approving them now would send short (a
   * reschedule asks its own preview).
   */
  async enrich<T extends WorklistItemLike>(
    items: T[],
    now = new Date(),
    purpose: { for: 'approval' | 'to-do' } = { for: 'approval' },
  ): Promise<(T & { view: ItemView })[]> {
    // An infusion titrated per kg: awaiting approval, the dose approving it orders (its proposal's); on the to-do
    // list, the dose its order gives, which a clinician may change before the session.
    const protocols = await this.protocolsOf(items);
    const questionnaires = await this.questionnairesOf(items, protocols);
    const dosing = new Map(
      items.flatMap((item) => {
        const reading = doseReadingFor(protocols.get(item.protocol ?? ''), item);
        return reading ? [[item.id, reading] as const] : [];
      }),
    );
    const weightSearches = new Map([...dosing.values()].flatMap((d) => (d.weight ? [[d.weight.name, d.weight]] : [])));
    const ordersSearches = purpose.for === 'to-do' ? toDoOrdersSearches(items) : [];
    // The infusions' patients' open orders (one search more in the batch): awaiting approval, for the EHR's of the
    // drug; on the to-do list, for the EHR's replacements left open beside a session's order.
    const sessions = purpose.for === 'approval' ? items.filter((i) => dosing.has(i.id) && !i.onHold) : [];
    const toDoSessions =
      purpose.for === 'to-do' ? items.filter((i) => i.request?.startsWith('MedicationRequest/')) : [];
    const openOrdersSearch = openOrdersOf(unique([...sessions, ...toDoSessions].map((i) => i.patient)));
    const { summaries, scores, effects, issues, plansNotHolding, proposals, doseSearches } = await this.records(
      unique(items.map((i) => i.patient)),
      unique(items.map((i) => i.carePlan)),
      now,
      {
        proposals:
          purpose.for === 'approval' ? unique(items.filter((i) => dosing.has(i.id)).map((i) => i.request)) : [],
        searches: [...weightSearches.values(), ...ordersSearches, ...openOrdersSearch],
      },
    );
    const openOrders = matchesOf<MedicationRequest>(doseSearches[OPEN_ORDERS]);
    const openOrderSessions = includedOf<Task>(doseSearches[OPEN_ORDERS], 'Task');
    // The orders the EHR's open ones replace (a dose changed there): a replacement of another session's order is that
    // session's, not one to approve this one on (since session 49, as the approval judges it since 48). Read only for
    // open orders that replace one.
    const replaced = sessions.length
      ? await ordersReplacedBy(
          (type, params) => this.fhir.search(type, params),
          openOrders,
          orderEvenIfDeleted(this.fhir),
        )
      : { priors: [], tasks: [] };
    const ehrOrdersOf = (item: T): Pick<ItemView, 'ehrOrders'> => {
      const proposal = item.request ? proposals.get(item.request) : undefined;
      if (!sessions.includes(item) || !proposal) return {};
      const theirs = new Set([
        ...ordersOfOtherSessions(openOrderSessions, item.id),
        ...replacementsOfOtherSessions(openOrders, replaced.priors, [...openOrderSessions, ...replaced.tasks], item.id),
      ]);
      const ofPatient = openOrders.filter(
        (o) => o.subject?.reference === item.patient && !theirs.has(`MedicationRequest/${o.id}`),
      );
      const notice = ehrOrdersNotice(ehrOrdersForSession(item.due, proposal, ofPatient), this.config.clinicTimeZone);
      return notice ? { ehrOrders: notice } : {};
    };
    const orders = await this.toDoOrders(items, {
      written: doseSearches[TO_DO_ORDERS],
      approvedOn: doseSearches[TO_DO_ORDERS_APPROVED_ON],
      patientsOpen: doseSearches[OPEN_ORDERS],
    });
    const zone = this.config.clinicTimeZone;
    const doseOf = (item: T) => {
      const reading = dosing.get(item.id);
      if (!reading) return {};
      const weight = reading.weight && doseSearches[reading.weight.name];
      if (purpose.for === 'to-do') {
        // The dose to change here is that of an order written here (the EHR changes its own).
        const order = orders.get(item.id);
        return order?.current && !order.ehrOrder ? { dose: doseView(reading, order.current, weight, now, zone) } : {};
      }
      return {
        dose: doseView(reading, item.request ? proposals.get(item.request) : undefined, weight, now, zone),
      };
    };
    const orderedDoseOf = (item: T) => {
      const order = orders.get(item.id);
      const text = order?.current && orderRateText(order.current);
      return { ...(text ? { orderedDose: text } : {}), ...(order?.status ? { orderStatus: order.status } : {}) };
    };
    return items.map((item) => {
      const standing = planStandingOf(item, plansNotHolding);
      return {
        ...item,
        view: {
          patient: item.patient ? summaries.get(item.patient) : undefined,
          protocol: this.protocol(item, protocols),
          task: {
            label: (item.kind && this.kindLabels.get(item.kind)) ?? item.kind ?? 'Task',
            ...this.answers(item, protocols, questionnaires),
          },
          contraindications: (item.carePlan && issues.get(item.carePlan)) || [],
          scores: (item.patient && scores.get(item.patient)) || [],
          ...(item.patient && effects.has(item.patient) ? { effects: effects.get(item.patient) } : {}),
          ...standing,
          ...(standing.blocked
            ? {}
            : // Held after approval, the row says so with the issue holding it (not "cannot be approved").
              purpose.for === 'approval' && !item.onHold
              ? protocolGone(item, protocols)
              : {}),
          ...(purpose.for === 'approval' ? this.reminderNotice(item, now, protocols) : {}),
          ...windowNoticeOf(item, zone),
          ...ehrOrdersOf(item),
          ...doseOf(item),
          ...orderedDoseOf(item),
        },
      };
    });
  }

  /**
   * Each to-do Task's order now (to-do-orders.ts): from the orders its approval wrote and its patient's open orders,
   * read with the page; when some have all been closed, one more search, of those patients' orders since, for the
   * EHR's replacements.
   */
  private async toDoOrders(
    items: WorklistItemLike[],
    found: { written?: Bundle; approvedOn?: Bundle; patientsOpen?: Bundle },
  ): Promise<Map<string, ToDoOrder>> {
    const { written, approvedOn } = found;
    const byTask = ordersByTask(written, approvedOn, items);
    const open = matchesOf<MedicationRequest>(found.patientsOpen);
    const patientOf = new Map(items.map((i) => [i.id, i.patient]));
    const toFollow = new Set(tasksToFollowSince(byTask, open, (task) => patientOf.get(task)));
    const patients = unique(items.filter((i) => toFollow.has(i.id)).map((i) => i.patient));
    const theirOrders = [...toFollow].flatMap((task) => byTask.get(task) ?? []);
    const patientOrders = patients.length
      ? await this.fhir.searchAll<MedicationRequest>(
          'MedicationRequest',
          replacementOrdersParams(patients, theirOrders),
        )
      : [];
    return new Map(
      [...byTask].map(([task, orders]) => [
        task,
        toDoOrderOf(orders, [
          ...patientOrders,
          ...open.filter(
            (o) => o.subject?.reference === patientOf.get(task) && !patientOrders.some((p) => p.id === o.id),
          ),
        ]),
      ]),
    );
  }

  /**
   * The protocols the items' Tasks follow, by their canonicals: the catalog's, or an EHR's on the FHIR server (read
   * once, kept 30 s); the latest version of the url when the one applied is gone.
   */
  private protocolsOf(items: WorklistItemLike[]): Promise<Protocols> {
    return foundEach(
      items.map((i) => i.protocol),
      (c) => this.protocols.ofCanonical(c),
    );
  }

  /**
   * The Questionnaires the page's check rows are answered with, an EHR's read from the FHIR server (kept as its
   * protocols are): their titles for the rows, their effects for the patients' notes.
   */
  private questionnairesOf(items: WorklistItemLike[], protocols: Protocols): Promise<Map<string, Questionnaire>> {
    return foundEach(
      items.map((item) => {
        const protocol = protocols.get(item.protocol ?? '');
        return protocol && questionnaireCanonicalOf(protocol, item.action);
      }),
      (c) => this.protocols.questionnaire(c),
    );
  }

  private answers(
    item: WorklistItemLike,
    protocols: Protocols,
    questionnaires: Map<string, Questionnaire>,
  ): { answers?: string } {
    const protocol = protocols.get(item.protocol ?? '');
    // Its protocol gone: a kind the catalog's checks are is still recorded (by the Questionnaire its Task's activity
    // collects with, found when the dialog asks for it).
    if (!protocol)
      return item.kind && this.checkKinds.has(item.kind)
        ? { answers: this.kindLabels.get(item.kind) ?? item.kind }
        : {};
    const canonical = questionnaireCanonicalOf(protocol, item.action);
    if (!canonical) return {};
    const questionnaire = questionnaires.get(canonical);
    return { answers: questionnaire?.title ?? questionnaire?.name ?? 'Questionnaire' };
  }

  /** Awaiting approval (not held: approved already), with reminders that approving now would send short. */
  private reminderNotice(item: WorklistItemLike, now: Date, protocols: Protocols): Pick<ItemView, 'reminderNotice'> {
    const protocol = protocols.get(item.protocol ?? '');
    if (!protocol || !item.action || !item.due?.start || item.onHold) return {};
    const rules = reminderRulesFor(protocol, item.action);
    const task: Task = {
      resourceType: 'Task',
      status: 'draft',
      intent: 'plan',
      description: item.description,
      restriction: { period: item.due },
      extension: item.allowedWindow ? [{ url: PROTOCOL_WINDOW_EXTENSION, valuePeriod: item.allowedWindow }] : [],
    };
    const notice = noticeIfDecidedNow({ rules, task, now, zone: this.config.clinicTimeZone });
    return notice ? { reminderNotice: notice } : {};
  }

  /**
   * One FHIR batch: each patient and each plan (reads), the patients' scores and the plans' contraindications
   * (searches; every page of one with more, a round trip each, only then). A page of 20 patients took ~60 requests
   * before session 14.
   */
  async records(
    patients: string[],
    plans: string[],
    now = new Date(),
    doses: DoseReads = { proposals: [], searches: [] },
  ): Promise<PageRecords> {
    const readable = patients.filter((ref) => PATIENT_REFERENCE.test(ref));
    const readablePlans = plans.filter((ref) => CARE_PLAN_REFERENCE.test(ref));
    const readableProposals = doses.proposals.filter((ref) => MEDICATION_REQUEST_REFERENCE.test(ref));
    // The scores the protocols judge response by: the catalog's, and the EHR's protocols this process has read (the
    // page's items' protocols are read before this; two protocols may code one score differently). One search per
    // patient reads them with the effects.
    const scores = outcomeScores([...this.catalogPlans, ...this.protocols.seenOnServer().map((p) => p.plan)]);
    // The effects a check reports: the catalog's Questionnaires' and the EHR's this process has read (the page's check
    // rows' are read before this).
    const effectCodes = extractedChoices([
      ...this.catalogQuestionnaires,
      ...this.protocols.questionnairesSeenOnServer(),
    ]);
    const observationCodes = [...scoreCodes({ scores }), ...effectCodes.codes].join(',');
    const searches: NamedSearch[] = [
      ...(observationCodes
        ? patients.map((ref) => ({
            name: `scores ${ref}`,
            resourceType: 'Observation',
            params: { subject: ref, code: observationCodes, _count: 200 },
            everyMatch: true,
          }))
        : []),
      ...plans.map((ref) => ({
        name: `issues ${ref}`,
        resourceType: 'DetectedIssue',
        params: { implicated: ref },
        everyMatch: true,
      })),
      ...doses.searches,
    ];
    const { read, found } = await readAndSearchEach(
      this.fhir,
      [...readable, ...readablePlans, ...readableProposals].map((ref) => {
        const [type, id] = ref.split('/');
        return `${type}/${encodeURIComponent(id)}`;
      }),
      searches,
    );
    const byReference = new Map(readable.map((ref, i) => [ref, read[i] as Patient | undefined]));
    // The records those merged away were merged into, by name (the patient's name now), and the scores and effects
    // recorded under the records each patient's links (the person's latest, since session 50; before, a row's were
    // its record's own): one round more, only then.
    const keptRecords = [...new Set([...byReference.values()].flatMap((p) => (p && replacedBy(p)) || []))].filter(
      (ref) => PATIENT_REFERENCE.test(ref) && !byReference.has(ref),
    );
    const linkedScores: NamedSearch[] = observationCodes
      ? readable.flatMap((ref) => {
          const links = linkedPatientRecords(byReference.get(ref));
          return links.length
            ? [
                {
                  name: `linked scores ${ref}`,
                  resourceType: 'Observation',
                  params: { subject: links.join(','), code: observationCodes, _count: 200 },
                  everyMatch: true,
                },
              ]
            : [];
        })
      : [];
    let linkedFound: Record<string, Bundle | undefined> = {};
    if (keptRecords.length || linkedScores.length) {
      const { read: kept, found: more } = await readAndSearchEach(
        this.fhir,
        keptRecords.map((ref) => `Patient/${encodeURIComponent(ref.slice('Patient/'.length))}`),
        linkedScores,
      );
      keptRecords.forEach((ref, i) => byReference.set(ref, kept[i] as Patient | undefined));
      linkedFound = more;
    }
    const observationsOf = (ref: string) => [
      ...matchesOf<Observation>(found[`scores ${ref}`]),
      ...matchesOf<Observation>(linkedFound[`linked scores ${ref}`]),
    ];
    const plansNotHolding = new Map<string, CarePlan>();
    readablePlans.forEach((ref, i) => {
      const carePlan = read[readable.length + i] as CarePlan | undefined;
      if (carePlan && !carePlanHoldsCare(carePlan).ok) plansNotHolding.set(ref, carePlan);
    });
    return {
      summaries: new Map(patients.map((ref) => [ref, summaryOf(ref, byReference, now)])),
      missing: new Set(patients.filter((ref) => !byReference.get(ref))),
      scores: new Map(patients.map((ref) => [ref, latestScores(scores, observationsOf(ref))])),
      effects: new Map(
        patients.flatMap((ref) => {
          const latest = latestEffects(effectCodes, observationsOf(ref));
          return latest ? [[ref, latest] as const] : [];
        }),
      ),
      issues: new Map(plans.map((ref) => [ref, matchesOf<DetectedIssue>(found[`issues ${ref}`]).map(issueView)])),
      plansNotHolding,
      proposals: new Map(
        readableProposals.map((ref, i) => [
          ref,
          read[readable.length + readablePlans.length + i] as MedicationRequest | undefined,
        ]),
      ),
      doseSearches: Object.fromEntries(doses.searches.map((s) => [s.name, found[s.name]])),
    };
  }

  private protocol(item: WorklistItemLike, protocols: Protocols): ItemView['protocol'] {
    if (!item.protocol) return undefined;
    const plan = protocols.get(item.protocol)?.plan;
    const id = plan?.id ?? item.protocol.split('/').pop()?.split('|')[0];
    // As the Task records it (its protocol action's, or its infusion's for a check): none for patient instructions,
    // a check after an unplanned infusion, or a Task written before session 13 (the guess from the kind and the
    // protocol's name was wrong for a monthly protocol's initial series and for checks after boosters).
    const phase = item.phase === 'induction' || item.phase === 'maintenance' ? item.phase : undefined;
    return { id, title: plan?.title ?? plan?.name ?? id, ...(phase ? { phase } : {}) };
  }
}

const PATIENT_REFERENCE = /^Patient\/[^/]+$/;
const CARE_PLAN_REFERENCE = /^CarePlan\/[^/]+$/;
const MEDICATION_REQUEST_REFERENCE = /^MedicationRequest\/[^/]+$/;

/** The search of the page's infusion patients' open orders (any writer's), in the batch; none for no patients. */
const OPEN_ORDERS = 'open orders';
function openOrdersOf(patients: string[]): NamedSearch[] {
  const readable = patients.filter((ref) => PATIENT_REFERENCE.test(ref));
  if (!readable.length) return [];
  return [
    {
      name: OPEN_ORDERS,
      resourceType: 'MedicationRequest',
      // With the Tasks approved on them: an EHR's order a session was approved on is that session's (not the EHR's own).
      params: {
        subject: readable.join(','),
        intent: 'order',
        status: 'active,on-hold',
        _revinclude: 'Task:based-on',
        _count: 200,
      },
      everyMatch: true,
    },
  ];
}

/** What each key (once) reads as, by key; keys read as nothing left out. */
async function foundEach<T>(
  keys: (string | undefined)[],
  read: (key: string) => Promise<T | undefined>,
): Promise<Map<string, T>> {
  const wanted = unique(keys);
  const found = await Promise.all(wanted.map(read));
  return new Map(wanted.flatMap((key, i) => (found[i] ? [[key, found[i]] as const] : [])));
}

function unique(values: (string | undefined)[]): string[] {
  return [...new Set(values.filter((v): v is string => Boolean(v)))];
}

/**
 * A protocol action's Task whose protocol is neither the catalog's nor on the FHIR server (a PlanDefinition deleted
 * there): the approval refuses it (CurrentContraindications), so the page says so rather than offer Approve.
 */
function protocolGone(item: WorklistItemLike, protocols: Protocols): Pick<ItemView, 'blocked'> {
  if (!item.protocol || !item.action || protocols.has(item.protocol)) return {};
  return {
    blocked:
      'its protocol is not found any more, so the patient cannot be checked again: reject it, or have the protocol posted again',
  };
}

/** A Task due outside its protocol window (moved so in the EHR), on either list. */
function windowNoticeOf(item: WorklistItemLike, zone: string): Pick<ItemView, 'windowNotice'> {
  const notice = dueOutsideProtocolWindow(item.due, item.allowedWindow, zone);
  return notice ? { windowNotice: notice } : {};
}

/**
 * An item under a plan that holds no care now (stopped, completed, paused): why nothing may be done for it
 * (`blocked`), or, a post-infusion check outliving its plan (carePlanHoldsTask), why it is still to be done
 * (`planClosed`). Nothing for an item whose plan holds care.
 */
function planStandingOf(
  item: WorklistItemLike,
  plansNotHolding: Map<string, CarePlan>,
): Pick<ItemView, 'blocked' | 'planClosed'> {
  const carePlan = item.carePlan ? plansNotHolding.get(item.carePlan) : undefined;
  if (!carePlan) return {};
  const holds = carePlanHoldsTask(carePlan, {
    focus: item.request ? { reference: item.request } : undefined,
    reasonReference: item.infusion ? { reference: item.infusion } : undefined,
  });
  if (!holds.ok) return { blocked: holds.reason };
  const closed = carePlanHoldsCare(carePlan);
  if (closed.ok) return {};
  const why = closed.reason.charAt(0).toUpperCase() + closed.reason.slice(1);
  return { planClosed: `${why}: the check of the infusion given is still due` };
}
