// Reading images back with sharp, independently of the pipeline's own code.
import sharp from 'sharp';

/** @param {string | Buffer} input */
export async function imageInfo(input) {
  const { width, height, format, channels, depth, space, orientation } = await sharp(input).metadata();
  return { width, height, format, channels, depth, space, orientation };
}

/**
 * Mean absolute difference per channel value (0-255) between two images of the same size.
 * @param {string | Buffer} a
 * @param {string | Buffer} b
 */
export async function meanDifference(a, b) {
  const [left, right] = await Promise.all([a, b].map((input) => sharp(input).removeAlpha().raw().toBuffer({ resolveWithObject: true })));
  if (!left || !right) throw new Error('unreadable image');
  if (left.info.width !== right.info.width || left.info.height !== right.info.height) {
    throw new Error(`sizes differ: ${left.info.width}x${left.info.height} and ${right.info.width}x${right.info.height}`);
  }
  let sum = 0;
  for (let i = 0; i < left.data.length; i++) sum += Math.abs((left.data[i] ?? 0) - (right.data[i] ?? 0));
  return sum / left.data.length;
}
