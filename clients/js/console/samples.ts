// A sample payload for every event of the catalog, typed by the generated
// types: a catalog change that adds an event or a required field breaks the
// console's type check until a sample follows it.

import { EVENT_DOMAIN, EVENT_NAMES, type EventDomain, type EventName, type EventPayload } from '../src/index.js';

/** A sample's fields: the payload without what the console adds (organizationId, timestamp). */
type SampleFields<E extends EventName> = Omit<EventPayload<E>, 'timestamp' | 'organizationId'>;

type SampleFactory = { [E in EventName]: (n: number, userId: string) => SampleFields<E> };

const pad = (n: number) => String(n).padStart(4, '0');
const eur = (n: number) => Math.round((99 + ((n * 379) % 4900)) * 100) / 100;

export const SAMPLES: SampleFactory = {
  'invoice:created': (n) => ({ invoiceId: `inv_${n}`, invoiceNumber: `INV-2025-${pad(n)}`, customerId: 'cus_42', amount: eur(n), currency: 'EUR', status: 'DRAFT' }),
  'invoice:updated': (n) => ({ invoiceId: `inv_${n}`, invoiceNumber: `INV-2025-${pad(n)}`, amount: eur(n), currency: 'EUR', status: 'DRAFT' }),
  'invoice:paid': (n) => ({ invoiceId: `inv_${n}`, invoiceNumber: `INV-2025-${pad(n)}`, amount: eur(n), currency: 'EUR', status: 'PAID' }),
  'invoice:cancelled': (n) => ({ invoiceId: `inv_${n}`, invoiceNumber: `INV-2025-${pad(n)}`, status: 'CANCELLED' }),
  'invoice:sent': (n) => ({ invoiceId: `inv_${n}`, invoiceNumber: `INV-2025-${pad(n)}`, customerId: 'cus_42', status: 'SENT' }),
  'invoice:overdue': (n) => ({ invoiceId: `inv_${n}`, invoiceNumber: `INV-2025-${pad(n)}`, amount: eur(n), currency: 'EUR', status: 'OVERDUE' }),
  'expense:created': (n, u) => ({ expenseId: `exp_${n}`, categoryId: 'travel', amount: eur(n) / 10, currency: 'EUR', status: 'pending', submittedBy: u }),
  'expense:updated': (n, u) => ({ expenseId: `exp_${n}`, amount: eur(n) / 10, currency: 'EUR', status: 'pending', submittedBy: u }),
  'expense:approved': (n, u) => ({ expenseId: `exp_${n}`, status: 'approved', submittedBy: u }),
  'expense:rejected': (n, u) => ({ expenseId: `exp_${n}`, status: 'rejected', submittedBy: u }),
  'expense:deleted': (n) => ({ expenseId: `exp_${n}` }),
  'bank:transaction_imported': (n) => ({ accountId: 'acc_1', transactionId: `tx_${n}` }),
  'bank:transaction_classified': (n) => ({ accountId: 'acc_1', transactionId: `tx_${n}`, category: 'office_supplies', confidence: 0.87 }),
  'bank:transaction_auto_approved': (n) => ({ transactionId: `tx_${n}`, category: 'software', confidence: 0.97, autoApproved: true }),
  'bank:transactions_synced': (n) => ({ accountId: 'acc_1', transactionCount: 3, transactionIds: [`tx_${n}`, `tx_${n + 1}`, `tx_${n + 2}`] }),
  'bank:account_connected': () => ({ accountId: 'acc_1' }),
  'bank:account_disconnected': () => ({ accountId: 'acc_1' }),
  'bank:sync_error': () => ({ accountId: 'acc_1', error: 'The bank asked for a new consent (PSD2): reconnect the account.' }),
  'notification:new': (n, u) => ({ userId: u, notificationId: `ntf_${n}`, title: 'Invoice paid', message: `INV-2025-${pad(n)} was paid.`, type: 'success', actionUrl: '/invoices' }),
  'notification:read': (n, u) => ({ userId: u, notificationId: `ntf_${n}`, title: 'Invoice paid', message: 'read', type: 'info', read: true }),
  'notification:deleted': (n, u) => ({ userId: u, notificationId: `ntf_${n}`, title: 'Invoice paid', message: 'deleted', type: 'info' }),
  'document:uploaded': (n) => ({ documentId: `doc_${n}`, fileName: `receipt-${n}.pdf`, status: 'uploaded' }),
  'document:processed': (n) => ({ documentId: `doc_${n}`, fileName: `receipt-${n}.pdf`, status: 'processed' }),
  'document:classification_complete': (n) => ({ documentId: `doc_${n}`, documentType: 'receipt', status: 'classified' }),
  'document:ocr_complete': (n) => ({ documentId: `doc_${n}`, status: 'ocr_complete' }),
  'document:error': (n) => ({ documentId: `doc_${n}`, status: 'error', error: 'The file is not a readable PDF.' }),
  'hr:employee_added': (n) => ({ employeeId: `emp_${n}`, action: 'added' }),
  'hr:employee_updated': (n) => ({ employeeId: `emp_${n}`, action: 'salary_changed' }),
  'hr:leave_requested': (n) => ({ employeeId: 'emp_7', leaveRequestId: `lr_${n}`, action: 'requested' }),
  'hr:leave_approved': (n) => ({ employeeId: 'emp_7', leaveRequestId: `lr_${n}`, action: 'approved' }),
  'hr:leave_rejected': (n) => ({ employeeId: 'emp_7', leaveRequestId: `lr_${n}`, action: 'rejected' }),
  'hr:contract_expiring': (n) => ({ employeeId: 'emp_7', contractId: `ctr_${n}`, action: 'expires_in_30_days' }),
  'tax:return_submitted': (n) => ({ returnId: `ret_${n}`, taxYear: 2025, taxType: 'vat', status: 'submitted' }),
  'tax:return_accepted': (n) => ({ returnId: `ret_${n}`, taxYear: 2025, taxType: 'vat', status: 'accepted' }),
  'tax:return_rejected': (n) => ({ returnId: `ret_${n}`, taxYear: 2025, taxType: 'vat', status: 'rejected', error: 'Line 81 does not match the ledger.' }),
  'tax:filing_due_reminder': () => ({ taxYear: 2025, taxType: 'vat', dueDate: '2026-01-10T23:59:59.000Z' }),
  'integration:sync_started': () => ({ integrationName: 'datev', integrationId: 'int_1', status: 'running' }),
  'integration:sync_completed': (n) => ({ integrationName: 'datev', integrationId: 'int_1', status: 'completed', recordsProcessed: 100 + n }),
  'integration:sync_failed': () => ({ integrationName: 'lexoffice', integrationId: 'int_2', status: 'failed', error: 'The API key was revoked.' }),
  'integration:connection_established': () => ({ integrationName: 'stripe', integrationId: 'int_3', status: 'connected' }),
  'integration:connection_lost': () => ({ integrationName: 'stripe', integrationId: 'int_3', status: 'disconnected', error: 'Token expired.' }),
  'automation:classification_complete': (n) => ({ entityType: 'transaction', entityId: `tx_${n}`, feature: 'classification', action: 'CLASSIFIED', confidence: 0.91, category: 'travel' }),
  'automation:auto_approved': (n) => ({ entityType: 'expense', entityId: `exp_${n}`, feature: 'classification', action: 'AUTO_APPROVED', confidence: 0.98, autoApproved: true }),
  'automation:review_required': (n) => ({ entityType: 'transaction', entityId: `tx_${n}`, feature: 'classification', action: 'REVIEW_REQUIRED', confidence: 0.55, reasoning: 'Two categories fit equally well.' }),
  'automation:confidence_low': (n) => ({ entityType: 'receipt_scan', entityId: `scan_${n}`, feature: 'classification', action: 'CLASSIFIED', confidence: 0.31 }),
  'automation:tax_deduction_suggested': (n) => ({ entityType: 'expense', entityId: `exp_${n}`, feature: 'tax_deduction', action: 'SUGGESTED', confidence: 0.8, metadata: { taxRelevant: true, suggestedDeductionCategory: 'home_office' } }),
};

/** The events of each domain, in catalog order. */
export const DOMAIN_EVENTS = {} as Record<EventDomain, EventName[]>;
for (const name of EVENT_NAMES) (DOMAIN_EVENTS[EVENT_DOMAIN[name]] ??= []).push(name);

/** One publishable event: the body of the HTTP API, for organization org. */
export interface PublishRequest {
  event: EventName;
  payload: Record<string, unknown>;
}

export function sample(event: EventName, n: number, organizationId: string, userId: string): PublishRequest {
  const fields = (SAMPLES[event] as (n: number, u: string) => object)(n, userId);
  return { event, payload: { organizationId, ...fields } };
}
