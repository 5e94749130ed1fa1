/**
 * On-demand prices of the instance types workshops use, US East (N. Virginia), Linux, USD per
 * hour, as listed by AWS on PRICES_AS_OF. Other regions cost up to a third more; a deploy can
 * give its own price (`-c hourlyPrice=…`, locally `--hourly-price`).
 */
/** What `cdk deploy` starts when no instanceType is given. */
export const DEFAULT_INSTANCE_TYPE = 't3.large';

export const PRICES_AS_OF = '2026-12-01';
export const ON_DEMAND_PRICES: Readonly<Record<string, number>> = {
  't3.medium': 0.0416,
  't3.large': 0.0832,
  't3.xlarge': 0.1664,
  't3.2xlarge': 0.3328,
  'm5.large': 0.096,
  'm5.xlarge': 0.192,
  'm5.2xlarge': 0.384,
  'c5.xlarge': 0.17,
  'c5.2xlarge': 0.34,
  'g4dn.xlarge': 0.526,
  'g4dn.2xlarge': 0.752,
  'g4dn.4xlarge': 1.204,
  'g5.xlarge': 1.006,
  'g5.2xlarge': 1.212,
  'g6.xlarge': 0.8048,
};

/** What the VMs are and, when the deploy says, what an hour of one costs. */
export interface Pricing {
  instanceType: string;
  hourlyPrice?: number;
}

/** The price an estimate uses and where it comes from; none for a type the table lacks and no override. */
export type HourlyPrice = { usd: number; source: string } | { usd: null; source: string };

export function hourlyPrice(pricing: Pricing): HourlyPrice {
  if (pricing.hourlyPrice !== undefined)
    return { usd: pricing.hourlyPrice, source: `${pricing.instanceType} at the configured $${pricing.hourlyPrice}/h` };
  const listed = ON_DEMAND_PRICES[pricing.instanceType];
  if (listed === undefined) return { usd: null, source: `no price known for ${pricing.instanceType}: set hourlyPrice` };
  return { usd: listed, source: `${pricing.instanceType} on demand in us-east-1 at $${listed}/h (prices as of ${PRICES_AS_OF})` };
}

/** Dollars to the cent. */
export function estimatedCost(vmHours: number, price: HourlyPrice): number | null {
  return price.usd === null ? null : Math.round(vmHours * price.usd * 100) / 100;
}

/** The environment that carries the pricing to the web Lambda. */
export function pricingEnv(pricing: Pricing): Record<string, string> {
  return {
    LABLINK_INSTANCE_TYPE: pricing.instanceType,
    ...(pricing.hourlyPrice === undefined ? {} : { LABLINK_HOURLY_PRICE: String(pricing.hourlyPrice) }),
  };
}

export function pricingFromEnv(env: NodeJS.ProcessEnv): Pricing {
  const price = env.LABLINK_HOURLY_PRICE ? Number(env.LABLINK_HOURLY_PRICE) : undefined;
  if (price !== undefined && !(Number.isFinite(price) && price >= 0))
    throw new Error(`LABLINK_HOURLY_PRICE must be a price in dollars, not "${env.LABLINK_HOURLY_PRICE}".`);
  return { instanceType: env.LABLINK_INSTANCE_TYPE || DEFAULT_INSTANCE_TYPE, hourlyPrice: price };
}
