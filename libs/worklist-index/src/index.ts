export * from './worklist-entry';
export * from './worklist-index';
export * from './worklist-index.module';
