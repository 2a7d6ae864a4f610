export * from './roles';
export * from './smart-scopes';
export * from './token-verifier';
export * from './auth.guard';
export * from './auth.module';
export * from './current-caller.decorator';
export * from './token-introspection';
