// The stylesheet main.js imports, which esbuild bundles.
declare module '*.css';
