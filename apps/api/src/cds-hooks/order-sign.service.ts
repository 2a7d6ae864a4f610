import { Injectable } from '@nestjs/common';
import type {
  ActivityDefinition,
  Bundle,
  CarePlan,
  DetectedIssue,
  MedicationRequest,
  Period,
  PlanDefinition,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { badRequest } from '@kc/common';
import { FhirClient } from '@kc/fhir';
import { PlanDefinitions } from '@kc/nest-core';
import { orderTaskIdOf } from '@kc/task-states';
import {
  latestWeightKg,
  patientDataQueries,
  ProtocolCatalog,
  rateTitrationOf,
  type RateTitration,
} from '@kc/protocols';
import {
  codeDisplays,
  orderContraindications,
  orderSignCards,
  recordsUnreadableCard,
  sortCards,
  unresolvedMedicationCard,
  type CardOptions,
} from './cards';
import type { Card, CdsRequest, CdsResponse, CdsServiceDefinition } from './cds-types';
import { evaluateEligibility, mergedRecordsUnchecked } from './eligibility';
import {
  isKetamineOrder,
  ketamineOrders,
  ketamineProductCodes,
  patientIdOf,
  protocolsForOrder,
  unresolvedMedicationOrders,
  type ProductCode,
  type ResolvedMedications,
} from './ketamine-orders';
import { readFailure } from './ehr-fhir-server';
import {
  checkOrderRate,
  planTitrations,
  rangeForOrder,
  rateOutsideCards,
  uncheckedRates,
  type RateFinding,
} from './rate-range';
import { bolusAboveCards, checkOrderBolus, uncheckedBoluses, type BolusFinding } from './bolus-ceiling';
import { MedicationResolver } from './medication-resolver';
import { EhrProtocolEligibility } from './ehr-protocol-eligibility';
import { planStatusCards } from './plan-status';
import { duplicateOrderCards } from './duplicate-orders';
import {
  CARE_PLANS_QUERY,
  checkPatientId,
  CONTRAINDICATIONS_QUERY,
  OPEN_ORDERS_QUERY,
  PATIENT_QUERY,
  PATIENT_TOKEN,
  PrefetchResolver,
  prefetchTemplates,
  resourcesIn,
  type PrefetchQuery,
  type ResolvedPrefetch,
} from './prefetch';

type Titrations = ReturnType<typeof planTitrations>;

/** What an order's rate and bolus are judged against: its protocols' ranges, and its EHR definition's when read. */
interface OrderRanges {
  plans: PlanDefinition[];
  ehrTitrations: Titrations;
  data: ResolvedPrefetch['data'];
}

/**
 * order-sign: a ketamine MedicationRequest among the draft orders, for a patient with an unresolved contraindication
 * on record or failing the protocol's eligibility conditions (fhir-profiles/), gets a critical card naming the
 * contraindication and its evidence.
 */
@Injectable()
export class OrderSignService {
  readonly definition: CdsServiceDefinition;
  private readonly codes: ProductCode[];
  private readonly displays: Record<string, string>;
  private readonly plans: PlanDefinition[];
  /** Prefetch key of each protocol input (plan id -> variable name -> key). */
  private readonly keyOf = new Map<string, Map<string, string>>();
  private readonly queries: PrefetchQuery[];
  /** Each protocol's titrated infusions (fhir-profiles rate-titration): the rates per kg an order may ask for. */
  private readonly titrations = new Map<string, ReturnType<typeof planTitrations>>();

  constructor(
    private readonly prefetch: PrefetchResolver,
    private readonly medications: MedicationResolver,
    private readonly fhir: FhirClient,
    private readonly catalog: ProtocolCatalog,
    private readonly protocols: PlanDefinitions,
    private readonly ehrProtocols: EhrProtocolEligibility,
  ) {
    this.codes = ketamineProductCodes(catalog.resources);
    this.displays = codeDisplays(catalog.resources);
    this.plans = catalog.planDefinitions();
    for (const plan of this.plans) this.titrations.set(plan.id!, planTitrations(plan, catalog));
    this.queries = [PATIENT_QUERY, CONTRAINDICATIONS_QUERY, CARE_PLANS_QUERY, OPEN_ORDERS_QUERY];
    // The protocols' own data requirements become prefetch templates, one key per variable; a variable two protocols
    // fetch differently gets a key per protocol.
    const byTemplate = new Map<string, string>();
    for (const plan of this.plans) {
      const keys = new Map<string, string>();
      for (const q of patientDataQueries(plan, PATIENT_TOKEN)) {
        const query: PrefetchQuery = {
          key: q.name,
          resourceType: q.resourceType,
          params: q.params,
          everyMatch: q.everyMatch,
          fromEhr: true,
        };
        const template = prefetchTemplates([query])[q.name];
        let key = byTemplate.get(template);
        if (!key) {
          key = this.queries.some((existing) => existing.key === q.name) ? `${plan.id}-${q.name}` : q.name;
          byTemplate.set(template, key);
          this.queries.push({ ...query, key });
        }
        keys.set(q.name, key);
      }
      this.keyOf.set(plan.id!, keys);
    }
    const products = this.codes.map((c) => `${c.system?.split('/').pop()} ${c.code}`).join(', ');
    this.definition = {
      hook: 'order-sign',
      id: 'ketamine-order-check',
      title: 'Ketamine order contraindication check',
      description:
        `Checks draft ketamine MedicationRequests (${products}) against the patient's unresolved contraindications ` +
        "and the infusion protocols' eligibility conditions (a contraindicated order gets a critical card), and its " +
        "rate per kg against the protocols' range and its bolus against their ceiling (outside: a warning card), " +
        "says when the patient's ketamine care plan is paused or was stopped, and when ketamine is already ordered for " +
        'that time by an order the new one does not replace (warning cards).',
      prefetch: prefetchTemplates(this.queries),
    };
  }

  /** `budget`: the call's time for FHIR reads; what it cuts short gets a card saying the check did not run. */
  async call(
    request: CdsRequest,
    options: Omit<CardOptions, 'displays'>,
    budget: AbortSignal,
  ): Promise<
    CdsResponse & {
      counts: Record<'prefetched' | 'fetched' | 'orders' | 'unresolved' | 'unreadable' | 'timedOut', number>;
      /** The patients whose records the check read (the orders' patients, and the records theirs link). */
      patientsRead: string[];
    }
  > {
    const contextPatient = checkPatientId(request.context?.patientId);
    const draftOrders = request.context?.draftOrders as Bundle | undefined;
    if (!draftOrders || draftOrders.resourceType !== 'Bundle')
      throw badRequest('context.draftOrders must be a FHIR Bundle', ['context.draftOrders']);
    const medications = await this.medications.resolve(draftOrders, request, budget);
    const orders = ketamineOrders(draftOrders, this.codes, medications);
    const unresolved = unresolvedMedicationOrders(draftOrders, medications);
    const counts = {
      prefetched: 0,
      fetched: 0,
      orders: orders.length,
      unresolved: unresolved.length,
      unreadable: 0,
      timedOut: 0,
    };
    const byPatient = new Map<string, MedicationRequest[]>();
    for (const order of orders) {
      const patientId = checkPatientId(patientIdOf(order) ?? contextPatient, 'MedicationRequest.subject');
      byPatient.set(patientId, [...(byPatient.get(patientId) ?? []), order]);
    }
    const cardOptions = { ...options, displays: this.displays };
    const cards: Card[] = unresolvedMedicationCard(unresolved, cardOptions);
    const patientsRead: string[] = [];
    const ehrTitrations = await this.ehrTitrations(orders, budget);
    for (const [patientId, patientOrders] of byPatient) {
      // Prefetch describes the context patient only; another patient's data is read from the server.
      const forRequest = patientId === contextPatient ? request : { ...request, prefetch: undefined };
      const plans = [...new Set(patientOrders.flatMap((o) => protocolsForOrder(o, this.plans)))];
      const wanted = this.queries.filter(
        (q) =>
          q.readPatient ||
          q.key === CONTRAINDICATIONS_QUERY.key ||
          q.key === CARE_PLANS_QUERY.key ||
          q.key === OPEN_ORDERS_QUERY.key ||
          plans.some((p) => [...this.keyOf.get(p.id!)!.values()].includes(q.key)),
      );
      const resolved = await this.readRecords(wanted, forRequest, patientId, budget);
      if ('unreadable' in resolved) {
        if (resolved.timedOut) counts.timedOut++;
        else counts.unreadable++;
        cards.push(...recordsUnreadableCard(patientOrders, resolved.unreadable, cardOptions));
        continue;
      }
      const { data, prefetched, fetched } = resolved;
      patientsRead.push(`Patient/${patientId}`, ...resolved.linked);
      counts.prefetched += prefetched;
      counts.fetched += fetched;
      // An order of an EHR's own protocol: that protocol's conditions too, on the data its inputs declare.
      const ehr = await this.ehrProtocols.inputsFor(
        patientOrders,
        data[CARE_PLANS_QUERY.key],
        forRequest,
        patientId,
        budget,
        resolved.linked,
      );
      counts.fetched += ehr.fetched;
      const verdict = evaluateEligibility([
        ...plans.map((plan) => ({
          plan,
          variables: Object.fromEntries(
            [...this.keyOf.get(plan.id!)!].map(([name, key]) => [name, data[key] as Bundle]),
          ),
        })),
        ...ehr.inputs,
      ]);
      const issues = resourcesIn<DetectedIssue>(data[CONTRAINDICATIONS_QUERY.key], 'DetectedIssue');
      const ranges = { plans, ehrTitrations, data };
      const rates = patientOrders.map((order) => ({ order, finding: this.rateFinding(order, ranges) }));
      const boluses = patientOrders.map((order) => ({ order, finding: this.bolusFinding(order, ranges) }));
      cards.push(
        ...orderSignCards(
          {
            orders: patientOrders,
            contraindications: orderContraindications(issues, verdict, options.zone),
            unchecked: [
              ...verdict.unchecked,
              ...ehr.unchecked,
              ...mergedRecordsUnchecked(resolved.linksUnread),
              ...uncheckedRates(rates.map((r) => r.finding)),
              ...uncheckedBoluses(boluses.map((b) => b.finding)),
            ],
          },
          cardOptions,
        ),
        ...rateOutsideCards(rates, cardOptions),
        ...bolusAboveCards(boluses, cardOptions),
        ...planStatusCards({
          orders: patientOrders,
          carePlans: resourcesIn<CarePlan>(data[CARE_PLANS_QUERY.key], 'CarePlan'),
          protocols: plans,
          options: cardOptions,
        }),
        ...(await this.duplicateCards(patientOrders, data[OPEN_ORDERS_QUERY.key], medications, cardOptions, budget)),
      );
    }
    return { cards: sortCards(cards), counts, patientsRead: [...new Set(patientsRead)] };
  }

  /** An order's rate per kg against its protocols' range, judged at the weight their weight input read. */
  private rateFinding(order: MedicationRequest, ranges: OrderRanges): RateFinding {
    const range = this.rangeFor(order, ranges);
    return range ? checkOrderRate(order, range, this.weightFor(range, ranges.plans, ranges.data)) : { kind: 'within' };
  }

  /** An order's bolus per kg against its protocols' ceiling, judged at the same weight. */
  private bolusFinding(order: MedicationRequest, ranges: OrderRanges): BolusFinding {
    const range = this.rangeFor(order, ranges);
    return range
      ? checkOrderBolus(order, range.bolus, this.weightFor(range, ranges.plans, ranges.data))
      : { kind: 'within' };
  }

  private rangeFor(order: MedicationRequest, { plans, ehrTitrations }: OrderRanges): RateTitration | undefined {
    return rangeForOrder(order, [...plans.flatMap((p) => this.titrations.get(p.id!) ?? []), ...ehrTitrations]);
  }

  /**
   * The rate-titrations of the ActivityDefinitions the orders name that are not the catalog's (an EHR's protocol's,
   * on the FHIR server): such an order is checked against its own definition's range, not the widest of the
   * catalog's. One search per such definition, in the call's budget; one not read (or with no titration) leaves the
   * catalog's range.
   */
  private async ehrTitrations(orders: MedicationRequest[], budget: AbortSignal): Promise<Titrations> {
    const named = [...new Set(orders.flatMap((o) => o.instantiatesCanonical ?? []))];
    const found: Titrations = [];
    for (const canonical of named.filter((c) => !this.catalog.resolve(c))) {
      try {
        const definition = await this.protocols.byCanonical<ActivityDefinition>(
          'ActivityDefinition',
          canonical,
          this.fhir.within(budget),
        );
        const titration = rateTitrationOf(definition);
        if (titration) found.push({ canonical, titration });
      } catch (err) {
        if (!readFailure(err)) throw err;
      }
    }
    return found;
  }

  /** The latest weight the protocols' weight input read for the patient. */
  private weightFor(range: RateTitration, plans: PlanDefinition[], data: ResolvedPrefetch['data']) {
    const input = range.weightInput;
    const key = plans.map((p) => input && this.keyOf.get(p.id!)?.get(input)).find(Boolean);
    return latestWeightKg(key ? (data[key] as Bundle | undefined) : undefined);
  }

  /**
   * The patient's records for the check, or why they could not be read: a FHIR server that does not answer (in the
   * call's budget) or refuses gets the clinician a card saying the check did not run, where an error (or an answer
   * after the EHR stopped waiting) would get them no card at all.
   */
  /**
   * The warning for ketamine already ordered for the time (duplicateOrderCards). The orders approved here carry no
   * window of their own (their session's is its Task's): those Tasks are read from this service's FHIR server, one
   * search, only when such orders are open; unread, those orders count as for any time.
   */
  private async duplicateCards(
    orders: MedicationRequest[],
    found: Resource | undefined,
    medications: ResolvedMedications,
    options: CardOptions,
    budget: AbortSignal,
  ): Promise<Card[]> {
    const open = resourcesIn<MedicationRequest>(found as Bundle | undefined, 'MedicationRequest').filter((o) =>
      isKetamineOrder(o, this.codes, undefined, medications),
    );
    const byTask = new Map(open.flatMap((o) => (orderTaskIdOf(o) && o.id ? [[orderTaskIdOf(o)!, o.id]] : [])));
    const sessionWindows = new Map<string, Period>();
    if (byTask.size)
      try {
        const tasks = await this.fhir
          .within(budget)
          .searchAll<Task>('Task', { _id: [...byTask.keys()].join(','), _count: 100 });
        for (const task of tasks)
          if (task.restriction?.period && byTask.has(task.id!))
            sessionWindows.set(byTask.get(task.id!)!, task.restriction.period);
      } catch (err) {
        if (!readFailure(err)) throw err;
      }
    return duplicateOrderCards({ orders, open, sessionWindows, options });
  }

  private async readRecords(
    queries: PrefetchQuery[],
    request: CdsRequest,
    patientId: string,
    budget: AbortSignal,
  ): Promise<ResolvedPrefetch | { unreadable: string; timedOut: boolean }> {
    try {
      return await this.prefetch.resolve(queries, request, patientId, budget);
    } catch (err) {
      const failure = readFailure(err);
      if (!failure) throw err;
      return { unreadable: failure.why, timedOut: failure.timedOut };
    }
  }
}
