/**
 * Turns orders into readable text for the demo's output. Display only: no rules live here, and
 * only types are imported from the domain, so the two modules do not depend on each other at run time.
 */
import type { AggregateId } from '@timebox/core';
import type { Address, OrderState } from './order-domain.js';

export function formatCents(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}

export function formatAddress(address: Address): string {
  return `${address.name}, ${address.street}, ${address.postalCode} ${address.city}, ${address.country}`;
}

/** The short form of an address, for one-line log entries. */
export function formatPlace(address: Address): string {
  return `${address.name}, ${address.city}`;
}

export function formatId(id: AggregateId): string {
  return id.join('/');
}

/** The order as a few lines of text; `totals` comes from the domain's `orderTotals`. */
export function describeOrder(state: OrderState, totals: { itemCount: number; totalCents: number }): string[] {
  const { itemCount, totalCents } = totals;
  const lines = [`status    ${state.status}`, `customer  ${state.customer}`, 'items'];
  for (const line of state.lines) {
    const amount = formatCents(line.quantity * line.unitPriceCents);
    lines.push(
      `  ${String(line.quantity).padStart(3)} × ${line.name.padEnd(22)} ${formatCents(line.unitPriceCents).padStart(9)} ${amount.padStart(9)}`,
    );
  }
  lines.push(`total     ${itemCount} items, ${formatCents(totalCents)}`);
  lines.push(`ship to   ${state.shippingAddress === null ? '(none)' : formatAddress(state.shippingAddress)}`);
  lines.push(`bill to   ${state.billingAddress === null ? '(none)' : formatAddress(state.billingAddress)}`);
  if (state.shipment !== null) {
    lines.push(`shipped   ${state.shipment.shippedAt} with ${state.shipment.carrier}, tracking ${state.shipment.trackingNumber}`);
  }
  if (state.delivery !== null) {
    lines.push(`delivered ${state.delivery.deliveredAt}, signed by ${state.delivery.receivedBy}`);
  }
  return lines;
}
