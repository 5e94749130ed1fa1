import { PRICES_AS_OF, estimatedCost, hourlyPrice, pricingFromEnv } from '../../core/cost';

describe('the estimated cost of VM time', () => {
  it('prices a listed instance type from the dated table, and says so', () => {
    const price = hourlyPrice({ instanceType: 't3.large' });
    expect(price).toEqual({ usd: 0.0832, source: `t3.large on demand in us-east-1 at $0.0832/h (prices as of ${PRICES_AS_OF})` });
    expect(estimatedCost(10, price)).toBe(0.83);
  });

  it('takes the deploy’s own price over the table', () => {
    const price = hourlyPrice({ instanceType: 't3.large', hourlyPrice: 0.1 });
    expect(price.usd).toBe(0.1);
    expect(price.source).toBe('t3.large at the configured $0.1/h');
    expect(estimatedCost(10, price)).toBe(1);
  });

  it('estimates nothing for a type the table lacks, and says which setting fixes it', () => {
    const price = hourlyPrice({ instanceType: 'x9.huge' });
    expect(price).toEqual({ usd: null, source: 'no price known for x9.huge: set hourlyPrice' });
    expect(estimatedCost(10, price)).toBeNull();
  });

  it('reads the price from the web Lambda’s environment, refusing one that is no price', () => {
    expect(pricingFromEnv({ LABLINK_INSTANCE_TYPE: 'g4dn.xlarge', LABLINK_HOURLY_PRICE: '0.61' })).toEqual({
      instanceType: 'g4dn.xlarge',
      hourlyPrice: 0.61,
    });
    expect(pricingFromEnv({})).toEqual({ instanceType: 't3.large', hourlyPrice: undefined });
    expect(() => pricingFromEnv({ LABLINK_HOURLY_PRICE: 'cheap' })).toThrow(
      'LABLINK_HOURLY_PRICE must be a price in dollars, not "cheap".',
    );
  });
});
