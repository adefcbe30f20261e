/**
 * The operator's brand colour, made readable: whatever colour is configured, links and buttons
 * keep WCAG AA contrast (4.5:1) in the light and the dark scheme. The colour is darkened (light
 * scheme) or lightened (dark scheme) just enough, and button text is white or black, whichever
 * reads better.
 */
type Rgb = readonly [number, number, number];

/** The page backgrounds of the two schemes (Chromium's Canvas colours). */
const LIGHT_BACKGROUND: Rgb = [255, 255, 255];
const DARK_BACKGROUND: Rgb = [18, 18, 18];
const AA = 4.5;

export function parseHexColour(hex: string): Rgb | undefined {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(hex.trim());
  if (!m) return undefined;
  const digits = m[1]!.length === 3 ? [...m[1]!].map((d) => d + d).join('') : m[1]!;
  return [0, 2, 4].map((i) => Number.parseInt(digits.slice(i, i + 2), 16)) as unknown as Rgb;
}

const toHex = (c: Rgb) => `#${c.map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;

function luminance([r, g, b]: Rgb): number {
  const lin = (v: number) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

export function contrast(a: Rgb, b: Rgb): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** Mixes `colour` towards `towards` in small steps until it reaches AA against `background`. */
function readable(colour: Rgb, background: Rgb, towards: Rgb): Rgb {
  for (let t = 0; t <= 1; t += 0.02) {
    const mixed = colour.map((v, i) => Math.round(v + (towards[i]! - v) * t)) as unknown as Rgb;
    if (contrast(mixed, background) >= AA) return mixed;
  }
  return towards;
}

/** The stylesheet that applies the brand colour (served as /assets/brand.css). */
export function brandStylesheet(hex: string): string {
  const colour = parseHexColour(hex) ?? parseHexColour('#2563eb')!;
  const light = readable(colour, LIGHT_BACKGROUND, [0, 0, 0]);
  const dark = readable(colour, DARK_BACKGROUND, [255, 255, 255]);
  const onButton = (c: Rgb) => (contrast(c, [255, 255, 255]) >= contrast(c, [0, 0, 0]) ? '#ffffff' : '#000000');
  return [
    `:root { --accent: ${toHex(light)}; --on-accent: ${onButton(light)}; }`,
    `@media (prefers-color-scheme: dark) { :root { --accent: ${toHex(dark)}; --on-accent: ${onButton(dark)}; } }`,
    '',
  ].join('\n');
}
