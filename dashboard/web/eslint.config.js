// ESLint's recommended rules for the dashboard's sources, tests and build.
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['node_modules/'] },
  js.configs.recommended,
  { files: ['src/**/*.js'], languageOptions: { globals: globals.browser } },
  { files: ['test/**/*.mjs', 'build.mjs', 'eslint.config.js'], languageOptions: { globals: globals.node } },
];
