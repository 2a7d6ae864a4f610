import { ValidationPipe } from '@nestjs/common';

/** Strict DTO validation: unknown fields and wrong types are a 400, not silently dropped. */
export const strictBody = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });
