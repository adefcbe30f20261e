import { describe, expect, it } from 'vitest';
import { brandStylesheet, contrast, parseHexColour } from '../../src/http/brand.ts';

const WHITE = [255, 255, 255] as const;
const DARK = [18, 18, 18] as const;

describe('the brand colour', () => {
  it.each(['#2563eb', '#ffcc00', '#ffffff', '#000000', '#e11d48', '#0f0', '#777'])('%s keeps AA contrast for links and buttons in both schemes', (colour) => {
    const css = brandStylesheet(colour);
    const [light, dark] = [...css.matchAll(/--accent: (#[0-9a-f]{6}); --on-accent: (#[0-9a-f]{6})/g)].map((m) => ({ accent: parseHexColour(m[1]!)!, text: parseHexColour(m[2]!)! }));
    expect(contrast(light!.accent, WHITE)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(dark!.accent, DARK)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(light!.accent, light!.text)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(dark!.accent, dark!.text)).toBeGreaterThanOrEqual(4.5);
  });

  it('keeps a colour that already reads well as it is', () => {
    expect(brandStylesheet('#2563eb')).toContain(':root { --accent: #2563eb; --on-accent: #ffffff; }');
  });
});
