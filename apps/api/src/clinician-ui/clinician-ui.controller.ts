import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from '@kc/auth';
import { WORKLIST_PAGE } from './worklist-page';

/** The page itself holds no data, so it is public; everything it shows comes from the API with the clinician's token. */
@ApiExcludeController()
@Controller('ui')
export class ClinicianUiController {
  @Public()
  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
  page(): string {
    return WORKLIST_PAGE;
  }
}
