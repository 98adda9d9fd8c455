// Rows shaped like photo-concept-bucket's, for the memory runs: the bench's whole-dataset
// run and bench/memory-parts.mjs use the same ones.
const WORDS = 'a photo of the with in on and close-up view of warm light soft background wooden table green leaves city street at night'.split(' ');

/** Row i's caption: 40 to 120 words, like cogvlm captions (about 280 to 840 bytes). */
export function datasetCaption(i) {
  const length = 40 + ((i * 7919) % 80);
  return Array.from({ length }, (_, w) => WORDS[(i + w * 31) % WORDS.length]).join(' ');
}

/** Row i's id: numbers from 1,000,000, as the dataset's Pexels ids are. */
export function datasetId(i) {
  return 1_000_000 + i;
}
