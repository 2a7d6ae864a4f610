import type { Bundle, Coding, Resource } from '@medplum/fhirtypes';

/** CDS Hooks 2.0 shapes (https://cds-hooks.hl7.org/2.0/): only what this service sends and reads. */

export interface CdsServiceDefinition {
  hook: string;
  id: string;
  title: string;
  description: string;
  /** key -> FHIR query template with {{context.patientId}} tokens. */
  prefetch?: Record<string, string>;
  usageRequirements?: string;
}

export interface CdsRequest {
  hook: string;
  hookInstance: string;
  fhirServer?: string;
  fhirAuthorization?: unknown;
  context: Record<string, unknown> & { patientId?: string; userId?: string };
  /** Absent or null keys are fetched by the service itself. */
  prefetch?: Record<string, Resource | Bundle | null | undefined>;
}

export type Indicator = 'info' | 'warning' | 'critical';

export interface CardLink {
  label: string;
  url: string;
  type: 'absolute' | 'smart';
}

export interface CardAction {
  type: 'create' | 'update' | 'delete';
  description: string;
  resource?: Resource;
  resourceId?: string[];
}

export interface Card {
  uuid?: string;
  /** Under 140 characters. */
  summary: string;
  /** GitHub-flavoured markdown. */
  detail?: string;
  indicator: Indicator;
  source: { label: string; url?: string; topic?: Coding };
  suggestions?: { label: string; uuid?: string; isRecommended?: boolean; actions?: CardAction[] }[];
  selectionBehavior?: 'at-most-one' | 'any';
  overrideReasons?: Coding[];
  links?: CardLink[];
}

export interface CdsResponse {
  cards: Card[];
}
