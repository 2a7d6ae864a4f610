import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '@kc/auth';
import { HealthService } from './health.service';

@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  /** Liveness: the process answers, saying which one (its pid: behind a balancer, or a port another took). */
  @Public()
  @Get('live')
  @HttpCode(200)
  live() {
    return { status: 'ok', pid: process.pid };
  }

  /**
   * Readiness: Redis and the FHIR server both answer; 503 otherwise, with which one failed. Unavailable
   * profiles make the report degraded but keep 200: the other protocols are served, so the instance stays in
   * rotation while an operator fixes the file.
   */
  @Public()
  @Get(['', 'ready'])
  async ready(@Res({ passthrough: true }) res: Response) {
    const { ready, report } = await this.health.check();
    res.status(ready ? 200 : 503);
    return report;
  }
}
