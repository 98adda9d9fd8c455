/** The tool's version, as package.json gives it (a test checks the two agree). */
export const VERSION = '0.1.0';
