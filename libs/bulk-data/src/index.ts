export * from './export-kick-off';
export * from './bulk-export';
export * from './export-elements';
