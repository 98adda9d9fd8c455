/**
 * Output size rules (`--resize`), pure functions of the source size.
 *
 * The default, `shortest`, is the photo-concept-bucket reference downloader's
 * `resize_for_condition_image`: scale so the shorter side is `resolution`, then round each
 * side to the nearest multiple of 64 with Python's `round` (half to even), so our sizes
 * match the reference's pixel for pixel: 2560x1600 becomes 1664x1024.
 */
export interface Size {
  readonly width: number;
  readonly height: number;
}

export type ResizeMode = 'shortest' | 'area' | 'longest' | 'center-crop' | 'none';
export const RESIZE_MODES: readonly ResizeMode[] = ['shortest', 'area', 'longest', 'center-crop', 'none'];

export interface SizeRule {
  readonly resize: ResizeMode;
  /** Target side for shortest, longest and center-crop. */
  readonly resolution: number;
  /** Target area for `area`, in millions of pixels. */
  readonly megapixels: number;
  /** Sides are rounded to the nearest multiple of this (shortest, longest, area). */
  readonly round: number;
  /** Scale images up to the target (the reference does); otherwise keep small ones as they are. */
  readonly upscale: boolean;
}

/** What to do with an image: keep its size, scale it to a size, or scale and crop the centre. */
export type SizePlan =
  | { readonly kind: 'keep' }
  | { readonly kind: 'scale'; readonly width: number; readonly height: number }
  | { readonly kind: 'crop'; readonly width: number; readonly height: number }
  /** Smaller than the target with upscaling off. */
  | { readonly kind: 'small' };

export function planSize(source: Size, rule: SizeRule): SizePlan {
  const { width, height } = source;
  let scale: number;
  switch (rule.resize) {
    case 'none':
      return { kind: 'keep' };
    case 'shortest':
    case 'center-crop':
      scale = rule.resolution / Math.min(width, height);
      break;
    case 'longest':
      scale = rule.resolution / Math.max(width, height);
      break;
    case 'area':
      scale = Math.sqrt((rule.megapixels * 1e6) / (width * height));
      break;
  }
  if (scale > 1 && !rule.upscale) return { kind: 'small' };
  if (rule.resize === 'center-crop') return { kind: 'crop', width: rule.resolution, height: rule.resolution };
  return {
    kind: 'scale',
    width: roundToMultiple(width * scale, rule.round),
    height: roundToMultiple(height * scale, rule.round),
  };
}

/** The reference rule on its own: shortest side to `resolution`, sides to multiples of `multiple`. */
export function shortestSideSize(source: Size, resolution: number, multiple: number): Size {
  const plan = planSize(source, { resize: 'shortest', resolution, megapixels: 0, round: multiple, upscale: true });
  if (plan.kind !== 'scale') throw new Error('unreachable');
  return { width: plan.width, height: plan.height };
}

/** Nearest multiple, never below one multiple (a side of 0 is not an image). */
export function roundToMultiple(value: number, multiple: number): number {
  return Math.max(1, roundHalfEven(value / multiple)) * multiple;
}

/** Python 3's `round`: halves go to the even neighbour (2.5 -> 2, 3.5 -> 4). */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Size filters (`--min-megapixels`, `--min-side`, `--max-aspect`); 0 turns one off. */
export interface SizeFilters {
  readonly minMegapixels: number;
  readonly minSide: number;
  readonly maxAspect: number;
}

/** Why a size does not pass the filters, or undefined when it does. */
export function sizeFilterProblem(size: Size, filters: SizeFilters): string | undefined {
  const { width, height } = size;
  const megapixels = (width * height) / 1e6;
  if (filters.minMegapixels > 0 && megapixels < filters.minMegapixels) {
    return `${width}x${height} is ${megapixels.toFixed(2)} megapixels, under --min-megapixels ${filters.minMegapixels}`;
  }
  if (filters.minSide > 0 && Math.min(width, height) < filters.minSide) {
    return `${width}x${height} has a side under --min-side ${filters.minSide}`;
  }
  const aspect = Math.max(width, height) / Math.min(width, height);
  if (filters.maxAspect > 0 && aspect > filters.maxAspect) {
    return `${width}x${height} has aspect ratio ${aspect.toFixed(2)}, over --max-aspect ${filters.maxAspect}`;
  }
  return undefined;
}
