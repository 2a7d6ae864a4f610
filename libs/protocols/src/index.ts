export * from './canonical';
export * from './due-window';
