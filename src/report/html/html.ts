/**
 * HTML built with one rule: whatever is put into a `html` template is text, unless it is
 * already `Html`. Strings and numbers are escaped where they land, in an element's text
 * or in a (double-quoted) attribute alike, so a caption such as
 * `"><img src=x onerror=alert(1)>` shows as those characters. Markup made elsewhere (the
 * charts' SVG, which Vega escapes itself) enters only through `trustedHtml`, by name.
 */

const MARKUP = Symbol('html markup');

export interface Html {
  readonly [MARKUP]: string;
}

type Fragment = Html | string | number | false | null | undefined | readonly Fragment[];

export function html(strings: TemplateStringsArray, ...values: Fragment[]): Html {
  let markup = strings[0] ?? '';
  values.forEach((value, index) => {
    markup += fragment(value) + (strings[index + 1] ?? '');
  });
  return trustedHtml(markup);
}

/** Markup that is already safe: only for what this program made itself. */
export function trustedHtml(markup: string): Html {
  return { [MARKUP]: markup };
}

export function markupOf(value: Html): string {
  return value[MARKUP];
}

/** `&`, `<`, `>` and both quotes: enough for text and for quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char as keyof typeof ESCAPES]);
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' } as const;

function fragment(value: Fragment): string {
  if (value === false || value === null || value === undefined) return '';
  if (typeof value === 'string') return escapeHtml(value);
  if (typeof value === 'number') return escapeHtml(String(value));
  if (isHtml(value)) return value[MARKUP];
  return value.map(fragment).join('');
}

function isHtml(value: Html | readonly Fragment[]): value is Html {
  return MARKUP in value;
}
