import { parseEmail } from '../../core/email';
import { generatePin } from '../../core/pin';

describe('parseEmail', () => {
  it('normalises case and surrounding spaces so one person is one participant', () => {
    expect(parseEmail('  Alice.Smith+lab@Example.COM ')).toEqual({ ok: true, email: 'alice.smith+lab@example.com' });
  });

  it.each([
    ['', /Enter your email/],
    ['alice', /not a valid email/],
    ['alice@example', /not a valid email/],
    ['alice@@example.com', /not a valid email/],
    ['al ice@example.com', /not a valid email/],
    ['alice@exa..mple.com', /not a valid email/],
    ["alice'; DROP TABLE vms;--@example.com", /not a valid email/],
    [`${'a'.repeat(250)}@example.com`, /too long/],
  ])('rejects %j', (input, message) => {
    const result = parseEmail(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(message);
  });
});

describe('generatePin', () => {
  it('gives six digits, different from one assignment to the next', () => {
    const pins = Array.from({ length: 200 }, generatePin);
    for (const pin of pins) expect(pin).toMatch(/^\d{6}$/);
    expect(new Set(pins).size).toBeGreaterThan(190);
  });
});

describe('parseEmail typo suggestions', () => {
  it.each([
    ['sam@gmial.com', 'sam@gmail.com'],
    ['sam@gmail.con', 'sam@gmail.com'],
    ['sam@hotmial.com', 'sam@hotmail.com'],
    ['sam@outlok.com', 'sam@outlook.com'],
  ])('asks whether %s meant %s', (typed, meant) => {
    expect(parseEmail(typed)).toEqual({
      ok: false,
      message: `Did you mean ${meant}? Correct the part after the @, or confirm that ${typed} is right.`,
      suggestion: meant,
    });
  });

  it('keeps the address as typed once the participant confirms that very address', () => {
    expect(parseEmail('Sam@Gmial.com', 'sam@gmial.com')).toEqual({ ok: true, email: 'sam@gmial.com' });
    expect(parseEmail('sam@gmial.com', 'other@gmial.com')).toMatchObject({ ok: false, suggestion: 'sam@gmail.com' });
  });

  it.each(['ymail.com', 'mail.com', 'email.com', 'gmx.com', 'university.edu'])(
    'accepts %s, a real domain that merely resembles a common one',
    (domain) => {
      expect(parseEmail(`sam@${domain}`)).toEqual({ ok: true, email: `sam@${domain}` });
    },
  );
});
