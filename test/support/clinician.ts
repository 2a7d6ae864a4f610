import { createHash, randomBytes } from 'node:crypto';
import request from 'supertest';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { CarePlan, Parameters, Patient, Procedure, Task } from '@medplum/fhirtypes';
import { PAGE_SCOPE } from '@kc/config';
import { bloodPressure, bodyWeight, outcomeScore } from '../fixtures/patient-data';
import { FollowUpService } from '../../apps/worker/src/followups/follow-up.service';
import { findChromium } from './browser';
import { completeInfusion } from './clinic';
import type { TestService } from './test-service';

/** Steps for the clinician page's tests: named patients, dev-issuer sign-in over HTTP and in the browser. */

export const LOINC = 'http://loinc.org';

/** The dev issuer the clinician page signs in with (DEV_ISSUER=true), as the page's tests configure it. */
export const DEV_ISSUER = {
  devIssuer: true,
  clientId: 'ketamine-careplans-ui',
  scope: PAGE_SCOPE,
  devTokenSeconds: 3600,
};

export async function enrolNamedPatient(
  service: TestService,
  planId: string,
  patient: { given: string; family: string; birthDate: string },
  startDate = '2027-01-01',
): Promise<{ patient: string; patientId: string; carePlanId: string }> {
  const { resource } = await service.fhir.create<Patient>({
    resourceType: 'Patient',
    name: [{ given: [patient.given], family: patient.family }],
    birthDate: patient.birthDate,
    gender: 'female',
  });
  const ref = `Patient/${resource.id}`;
  await service.fhir.create(bodyWeight(70, '2026-11-01T09:00:00Z', ref));
  await service.fhir.create(bloodPressure(122, 76, '2026-11-01T09:00:00Z', ref));
  const params: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'subject', valueReference: { reference: ref } },
      { name: 'startDate', valueDate: startDate },
      { name: 'persist', valueBoolean: true },
    ],
  };
  const res = await request(service.url)
    .post(`/fhir/PlanDefinition/${planId}/$apply`)
    .set(service.as('clinician'))
    .send(params)
    .expect(200);
  return { patient: ref, patientId: resource.id!, carePlanId: (res.body as CarePlan).id! };
}

/**
 * A named patient infused on 2027-01-04 (followed up: a post-infusion check and the next session awaiting approval),
 * whose plan the EHR then stopped (revoked), with no withdrawal run yet.
 */
export async function infusedThenStopped(
  service: TestService,
  patient: { given: string; family: string; birthDate: string },
): Promise<{ patient: string; patientId: string; carePlanId: string }> {
  const infused = await enrolNamedPatient(service, 'ketamine-low-dose-series', patient);
  const procedure = await completeInfusion(service, infused, '2027-01-04T10:00:00.000Z');
  await service.app.get(FollowUpService).handle(procedure);
  const carePlan = await service.fhir.read<CarePlan>('CarePlan', infused.carePlanId);
  await service.fhir.update<CarePlan>({ ...carePlan, status: 'revoked' });
  return infused;
}

/**
 * The EHR charts an approved session given (an hour into its window, for an hour) naming no plan, and no pump record:
 * the service cannot tell it is ketamine. Answers the infusion's id.
 */
export async function chartedNamingNoPlan(service: TestService, patient: string, session: Task): Promise<string> {
  const approved = await service.fhir.read<Task>('Task', session.id!);
  const start = Date.parse(approved.restriction!.period!.start!) + 3_600_000;
  const { resource } = await service.fhir.create<Procedure>({
    resourceType: 'Procedure',
    status: 'completed',
    code: { coding: [{ system: 'http://snomed.info/sct', code: '14152002', display: 'Intravenous infusion' }] },
    subject: { reference: patient },
    performedPeriod: { start: new Date(start).toISOString(), end: new Date(start + 3_600_000).toISOString() },
  });
  return resource.id!;
}

/** A score Observation (LOINC code) recorded for the patient; answers its id. */
export async function score(
  service: TestService,
  patient: string,
  code: string,
  value: number,
  when: string,
): Promise<string> {
  const { resource } = await service.fhir.create(outcomeScore(patient, code, value, when));
  return resource.id!;
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The whole authorization code + PKCE flow against the dev issuer over HTTP, as a browser would do it. */
export async function devSignIn(
  service: TestService,
  user: 'clinician' | 'admin' = 'clinician',
  extra: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const { verifier, challenge } = pkce();
  const params = {
    response_type: 'code',
    client_id: service.config.oidc.clientId,
    redirect_uri: `${service.url}/ui`,
    scope: 'openid fhirUser profile',
    state: 'state-123',
    nonce: 'nonce-123',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  };
  await request(service.url).get('/dev-issuer/authorize').query(params).expect(200);
  const redirect = await request(service.url)
    .post('/dev-issuer/authorize')
    .type('form')
    .send({ ...params, user })
    .expect(303);
  const location = new URL(String(redirect.headers.location));
  const token = await request(service.url)
    .post('/dev-issuer/token')
    .type('form')
    .send({
      grant_type: 'authorization_code',
      code: location.searchParams.get('code')!,
      redirect_uri: params.redirect_uri,
      client_id: params.client_id,
      code_verifier: verifier,
    })
    .expect(200);
  return token.body as Record<string, unknown>;
}

export async function launchChromium(): Promise<Browser> {
  const binary = await findChromium();
  return chromium.launch({
    executablePath: binary.executablePath,
    env: binary.env,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** Signs in on /ui through the dev issuer's page, as a clinician would, and waits for the worklist. */
export async function signInOnPage(page: Page, service: TestService, user = 'clinician'): Promise<void> {
  await page.goto(`${service.url}/ui`);
  await page.click('#sign-in');
  await page.waitForURL(/\/dev-issuer\/authorize/);
  await page.check(`input[name=user][value="${user}"]`);
  await page.click('#sign-in');
  await page.waitForSelector('#worklist:not([hidden])');
}
